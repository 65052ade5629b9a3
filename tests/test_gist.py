"""Gist tokens (pez.gist): the mask, cached gists against the masked sequence, training on a planted task, resume,
the comparison, the CLI, and one line (exit 2) for each bad input. Tiny random Llamas over the smollm2 vocabulary."""

import copy
import json

import pytest
import torch

from pez.cli import main
from pez.errors import PezError
from pez.gist import (
    GistCache,
    GistData,
    GistExample,
    GistModel,
    compare_compression,
    gist_compress,
    gist_evaluate,
    gist_generate,
    gist_train,
    load_gist_model,
)
from pez.gist.distill import Distilled
from pez.gist.mask import Layout, allowed, gist_mask, pack
from pez.gist.model import cache_kw, cache_of, encode, prefix_ids, score_rows
from pez.gist.train import add_gist_token
from pez.models.base import LoadedModel
from pez.models.lm import load_lm

COLOURS = ["red", "blue", "green", "yellow"]
ASK = {w: f"Answer with the colour {w}." for w in COLOURS}


def planted(items) -> list[GistExample]:
    """The output is the colour the instruction names: only the gist positions can carry it to the output."""
    return [GistExample(ASK[w], f"item {x}", w, tuple(COLOURS)) for w in COLOURS for x in items]


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    return load_lm(tiny_llama_dir, "cpu")


@pytest.fixture(scope="module")
def with_gist(tiny):
    """The tiny Llama with <GIST> added (untrained), as a GistModel with K = 3."""
    model, tok = copy.deepcopy(tiny.model), copy.deepcopy(tiny.tokenizer)
    token_id, base_vocab = add_gist_token(model, tok)
    torch.manual_seed(1)
    with torch.no_grad():  # a distinct gist row, so the gist positions are not the mean embedding
        model.get_input_embeddings().weight[token_id].normal_(0, 0.5)
    return GistModel(LoadedModel("tiny-gist", "lm", model.eval(), tok), token_id, 3, {"base_vocab": base_vocab})


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """A gist model (K = 2) trained on the planted task; its training report."""
    out = tmp_path_factory.mktemp("gist") / "model"
    data = GistData(planted(range(24)), planted(range(100, 108)))
    return gist_train(tiny, data, k=2, steps=60, out=out, lr=3e-3, eval_every=30, device="cpu")


def test_mask_blocks_only_body_queries_on_instruction_keys():
    lay = Layout(n_prefix=1, n_instruction=3, k=2, n_body=2)  # positions: P I I I G G B B, then 1 pad
    ok = allowed([lay], 9)[0]
    causal = torch.ones(9, 9).tril().bool()
    causal[:, 8] = False  # the pad key
    expected = causal.clone()
    expected[6:, 1:4] = False  # the body (and the padding after it) may not see the instruction
    assert torch.equal(ok, expected)
    assert ok[4:6, 1:4].all()  # the gist positions see the instruction
    assert ok[6:8, 0].all() and ok[6:8, 4:6].all()  # the body sees the prefix and the gist positions
    assert torch.equal(allowed([lay], 9, gist=False)[0], causal)
    m = gist_mask([lay], 9)
    assert m.shape == (1, 1, 9, 9) and m[0, 0, 6, 2] == torch.finfo(torch.float32).min and m[0, 0, 6, 5] == 0


def test_mask_without_an_instruction_equals_the_models_own_causal_mask(tiny):
    """Parity: the 4D mask path gives the library's logits for the plain 2D padding mask (right-padded rows)."""
    rows = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
    lays = [Layout(0, 0, 0, len(r)) for r in rows]
    ids = torch.tensor([r + [0] * (6 - len(r)) for r in rows])
    pad = torch.tensor([[1] * len(r) + [0] * (6 - len(r)) for r in rows])
    with torch.no_grad():
        mine = tiny.model(input_ids=ids, attention_mask=gist_mask(lays, 6)).logits
        theirs = tiny.model(input_ids=ids, attention_mask=pad).logits
    assert torch.allclose(mine[pad.bool()], theirs[pad.bool()], atol=1e-5)


def _kv(model, ids, lay):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), attention_mask=gist_mask([lay], len(ids)), use_cache=True)
    return [(k.clone(), v.clone()) for k, v, *_ in cache_of(out)]


@pytest.mark.parametrize("gist", [True, False], ids=["gist-mask", "causal"])
def test_body_sees_the_instruction_only_through_the_gist_positions(with_gist, gist):
    """The instruction tokens change, the gist positions' keys and values are held at instruction A's: under the
    gist mask the body's logits are exactly A's; under the plain causal mask they change."""
    from transformers import DynamicCache

    model, tok = with_gist.model, with_gist.tokenizer
    body = encode(tok, "\nInput: a film\nOutput: fine")
    a = encode(tok, "Say it kindly.")
    b = [t + 7 for t in a]  # other instruction tokens, the same length
    ids_a, lay = pack([], a, with_gist.token_id, 3, body)
    ids_b, _ = pack([], b, with_gist.token_id, 3, body)
    mask = gist_mask([lay], lay.length, gist=gist)
    with torch.no_grad():
        reference = model(input_ids=torch.tensor([ids_a]), attention_mask=mask).logits[0, lay.gist_end :]
    head = Layout(0, len(a), 3, 0)
    kv_a, kv_b = _kv(model, ids_a[: lay.gist_end], head), _kv(model, ids_b[: lay.gist_end], head)
    g = slice(lay.gist_start, lay.gist_end)
    mixed = []
    for (ka, va), (kb, vb) in zip(kv_a, kv_b):
        kb[:, :, g], vb[:, :, g] = ka[:, :, g], va[:, :, g]  # instruction B's keys and values, A's gist ones
        mixed.append((kb, vb))
    pos = torch.arange(lay.gist_end, lay.length)[None]
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor([body]),
            attention_mask=mask[:, :, lay.gist_end :],
            position_ids=pos,
            **cache_kw(model, DynamicCache(mixed)),
        ).logits[0]
    diff = (out - reference).abs().max().item()
    if gist:
        assert diff < 1e-5
    else:
        assert diff > 1e-3


def _masked_greedy(gm: GistModel, instruction: str, text: str, n: int) -> list[int]:
    """Greedy decoding with the instruction and gist tokens in place, the whole row re-run under the mask."""
    tok = gm.tokenizer
    body = encode(tok, GistExample(instruction, text).body())
    new = []
    for _ in range(n):
        ids, lay = pack(prefix_ids(tok), encode(tok, instruction), gm.token_id, gm.k, body + new)
        with torch.no_grad():
            logits = gm.model(input_ids=torch.tensor([ids]), attention_mask=gist_mask([lay], len(ids))).logits[0, -1]
        logits[gm.token_id] = -torch.inf
        nxt = int(logits.argmax())
        if nxt == tok.eos_token_id:
            break
        new.append(nxt)
    return new


def test_cached_gist_equals_the_masked_sequence(with_gist, tmp_path):
    instruction, text = "Describe the weather in one word.", "a grey morning"
    path = tmp_path / "gist.pt"
    cache = gist_compress(with_gist, instruction, out=path, device="cpu")
    assert cache.state.length == 3 and cache.state.offset == len(encode(with_gist.tokenizer, instruction)) + 3
    loaded = GistCache.load(path)
    got = gist_generate(with_gist, path, text, max_new_tokens=12, device="cpu")
    expected = _masked_greedy(with_gist, instruction, text, 12)
    assert len(expected) > 0
    assert got == with_gist.tokenizer.decode(expected, skip_special_tokens=True).strip()
    tok = with_gist.tokenizer
    body = encode(tok, GistExample(instruction, text).body()) + expected
    ids, lay = pack([], encode(tok, instruction), with_gist.token_id, 3, body)
    with torch.no_grad():
        full = with_gist.model(input_ids=torch.tensor([ids]), attention_mask=gist_mask([lay], len(ids))).logits
        logp, _ = score_rows(with_gist.model, loaded.state, [body], 0)
    assert torch.allclose(logp[0], torch.log_softmax(full[0, lay.gist_end :], -1), atol=1e-5)


def test_training_on_a_planted_task_lowers_held_out_loss(trained):
    assert trained.held_out_before > 5
    # below ln(4) / 2 (the output's colour token and end-of-sequence): better than any model blind to the
    # instruction, so the colour passed through the gist positions
    assert trained.held_out_after < 0.55
    assert [h["step"] for h in trained.history if "held_out_loss" in h] == [0, 30, 60]
    gm = load_gist_model(trained.out)
    assert gm.k == 2 and gm.info["instructions"] == sorted(ASK.values())
    held = planted(range(100, 108))
    results = [gist_evaluate(gm, gist_compress(gm, ASK[w]), held[8 * i : 8 * i + 8]) for i, w in enumerate(COLOURS)]
    assert all(r.n_labelled == 8 for r in results)
    assert sum(r.accuracy for r in results) / 4 > 0.5  # chance is 0.25


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_resume_equals_a_straight_run(tiny, tmp_path, lora):
    data = GistData(planted(range(6)), planted(range(100, 102)))
    kw = {"k": 2, "steps": 6, "lora": lora, "lr": 1e-2, "batch_size": 4, "eval_every": 3, "device": "cpu"}
    straight = gist_train(tiny, data, out=tmp_path / "straight", checkpoint_every=3, **kw)

    def stop(p):
        if p.step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gist_train(tiny, data, out=tmp_path / "resumed", checkpoint_every=2, callback=stop, **kw)
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    with pytest.raises(PezError, match="another run"):
        gist_train(tiny, data, out=tmp_path / "resumed", checkpoint_every=2, resume=True, **{**kw, "k": 1})
    resumed = gist_train(tiny, data, out=tmp_path / "resumed", checkpoint_every=2, resume=True, **kw)
    assert [h.get("loss") for h in resumed.history] == [h.get("loss") for h in straight.history]
    a, b = load_gist_model(straight.out).model.state_dict(), load_gist_model(resumed.out).model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    assert not (tmp_path / "resumed" / "checkpoint.pt").exists()


def test_prompt_tuning_state_equals_pefts_own_forward(tiny):
    import peft

    tuned = peft.get_peft_model(
        copy.deepcopy(tiny.model), peft.PromptTuningConfig(task_type=peft.TaskType.CAUSAL_LM, num_virtual_tokens=4)
    )
    embeds = tuned.get_prompt_embedding_to_save(adapter_name="default")
    rows = [[100, 200, 300, 400], [500, 600]]
    ids = torch.tensor([r + [0] * (4 - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (4 - len(r)) for r in rows])
    with torch.no_grad():
        theirs = torch.log_softmax(tuned(input_ids=ids, attention_mask=mask).logits[:, 4:], -1)
        state = Distilled(embeds, 0, 0.0).state(tiny.model, tiny.tokenizer)
        mine, valid = score_rows(tiny.model, state, rows, 0)
    assert torch.allclose(mine[valid], theirs[valid], atol=1e-5)


def test_compare_compression_on_the_planted_task(trained, tiny, tmp_path):
    data = planted(range(200, 212)) + [GistExample("Name a colour.", f"item {x}", "red") for x in range(12)]
    result = compare_compression(
        trained.out, data, base_model=tiny, inputs=4, train_inputs=8, hard_steps=2, tuning_steps=2, device="cpu"
    )
    rows = {(r["split"], r["method"]): r for r in result.rows}
    assert {s for s, _ in rows} == {"seen", "unseen"} and len(result.rows) == 3 * 5  # 2 seen, 1 unseen instruction
    assert rows["seen", "instruction"]["kl"] == 0.0 and rows["seen", "instruction"]["kl_output"] == 0.0
    assert all(r["kl"] is not None and r["kl"] >= -1e-6 for r in result.rows)
    assert rows["seen", "gist"]["context_tokens"] == 2 and rows["seen", "gist"]["portable"] is False
    assert rows["seen", "hard-prompt"]["portable"] is True and rows["seen", "hard-prompt"]["prompt"]
    n = rows["seen", "instruction"]["instruction_tokens"]
    assert rows["seen", "none"]["tokens_saved"] == n and rows["seen", "prompt-tuning"]["tokens_saved"] == n - 2
    assert rows["seen", "gist"]["accuracy"] is not None and rows["unseen", "gist"]["accuracy"] is None
    flops = {m: rows["seen", m]["flops_per_input"] for m in ("instruction", "gist", "none")}
    assert flops["instruction"] > flops["gist"] > flops["none"]
    result.save(tmp_path / "c.json")
    assert type(result).load(tmp_path / "c.json").rows == json.loads(json.dumps(result.rows))
    assert "| seen | gist |" in result.summary()


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gist-data") / "planted.jsonl"
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in planted(range(6))))
    return str(path)


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_train_compress_generate_evaluate(tiny_llama_dir, data_file, tmp_path, capsys):
    out = tmp_path / "g"
    code, stdout, err = _run(capsys, "gist", "train", "--model", tiny_llama_dir, "--data", data_file,
                             "--gist-tokens", "2", "--steps", "2", "--out", out, "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert stdout.strip() == str(out) and "held-out loss" in err and (out / "gist.json").exists()
    code, _, err = _run(capsys, "gist", "compress", "--model", out, "--instruction", ASK["red"],
                        "--out", tmp_path / "red.pt", "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert "-> 2 gist tokens" in err
    code, stdout, err = _run(capsys, "gist", "generate", "--model", out, "--gist", tmp_path / "red.pt",
                             "--input", "item 3", "--max-new-tokens", "3", "--device", "cpu")  # fmt: skip
    assert code == 0, err
    code, stdout, err = _run(capsys, "gist", "evaluate", "--model", out, "--gist", tmp_path / "red.pt",
                             "--data", data_file, "--out", tmp_path / "e.json", "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["n_labelled"] == 24


def _one_line(code, err, message):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pez: error:") and message in lines[0], err


def test_cli_bad_input_is_one_line(tiny_llama_dir, trained, data_file, tmp_path, capsys):
    no_instruction = tmp_path / "bad.jsonl"
    no_instruction.write_text(json.dumps({"input": "x", "output": "y"}) + "\n")
    train = ["gist", "train", "--model", tiny_llama_dir, "--steps", "1", "--device", "cpu", "--quiet"]
    cases = [
        ([*train, "--data", no_instruction, "--out", tmp_path / "a"], "has no instruction"),
        ([*train, "--data", data_file, "--gist-tokens", "0", "--out", tmp_path / "b"], "at least 1"),
        ([*train, "--data", data_file, "--gist-tokens", "5000", "--out", tmp_path / "c"], "does not fit"),
        ([*train, "--data", data_file, "--out", data_file], "is a file"),
        ([*train, "--data", data_file, "--resume", "--out", tmp_path / "d"], "nothing to resume"),
        (["gist", "compress", "--model", tiny_llama_dir, "--instruction", "x", "--out", tmp_path / "x.pt"],
         "is not a gist model"),
        (["gist", "compress", "--model", trained.out, "--instruction", "word " * 300, "--out", tmp_path / "x.pt",
          "--device", "cpu"], "shorten it"),
        (["gist", "generate", "--model", trained.out, "--gist", data_file, "--input", "x", "--device", "cpu"],
         "is not a gist file"),
    ]  # fmt: skip
    for argv, message in cases:
        _one_line(*_run(capsys, *argv)[::2], message)
    other = tmp_path / "other"
    assert _run(capsys, *train, "--data", data_file, "--out", other)[0] == 0
    assert _run(capsys, "gist", "compress", "--model", other, "--instruction", ASK["red"], "--out",
                tmp_path / "o.pt", "--device", "cpu")[0] == 0  # fmt: skip
    code, _, err = _run(capsys, "gist", "generate", "--model", trained.out, "--gist", tmp_path / "o.pt",
                        "--input", "item 1", "--device", "cpu")  # fmt: skip
    _one_line(code, err, "was made by another model")


def test_default_set_is_built_from_the_models_own_outputs_then_cached(tiny, tmp_path, monkeypatch):
    from pez.gist import data as gist_data

    monkeypatch.setenv("PEZ_CACHE", str(tmp_path))
    reviews = [("A warm, funny and moving film about an old friendship.", "positive"), ("Dull.", "negative")]
    monkeypatch.setattr(gist_data, "review_inputs", lambda split, n, seed: reviews[:n])
    data = gist_data.default_gist_data(tiny, per_instruction=2, held_out=1, max_new_tokens=3)
    n_train, n_unseen = len(gist_data.TRAIN_INSTRUCTIONS), len(gist_data.UNSEEN_INSTRUCTIONS)
    assert (len(data.train), len(data.held_out), len(data.unseen)) == (2 * n_train, n_train, n_unseen)
    first = data.train[0]
    assert first.output == "positive" and first.choices == ("positive", "negative")
    assert data.train[2].output == "yes" and data.train[3].output == "no"  # answer words of the gold labels
    unseen = {e.instruction for e in data.unseen}
    assert not unseen & {e.instruction for e in data.train}
    open_ones = [e for e in data.train if not e.choices]
    assert len(open_ones) == 2 * 8 and all("\n" not in e.output for e in open_ones)
    # the open outputs are the model's own greedy continuations after the full instruction
    # (written in a left-padded batch of two: here one at a time)
    from pez.gist.model import greedy, run_prefix

    tok = tiny.tokenizer
    for e in open_ones[:2]:
        state = run_prefix(tiny.model, prefix_ids(tok) + encode(tok, e.instruction))
        (ids,) = greedy(tiny.model, state, [encode(tok, e.body())], 3, 0, tok.eos_token_id)
        assert e.output == tok.decode(ids, skip_special_tokens=True).split("\n")[0].strip()
    monkeypatch.setattr(gist_data, "_build", lambda *a, **k: pytest.fail("rebuilt instead of read from the cache"))
    again = gist_data.default_gist_data(tiny, per_instruction=2, held_out=1, max_new_tokens=3)
    assert again.train == data.train and again.unseen == data.unseen


def test_data_files_and_their_errors(tmp_path):
    from pez.gist import read_gist_data
    from pez.gist.data import spread

    good = tmp_path / "d.jsonl"
    good.write_text('{"instruction": "Say hi.", "output": "hi"}\n\n{"instruction": "Pick.", "input": "x", '
                    '"output": "a", "choices": ["a", "b"]}\n')  # fmt: skip
    rows = read_gist_data(good)
    assert rows == [GistExample("Say hi.", "", "hi"), GistExample("Pick.", "x", "a", ("a", "b"))]
    assert rows[0].body() == "\nOutput:" and rows[1].body() == "\nInput: x\nOutput:"
    bad = {
        '{"input": "x", "output": "y"}': "has no instruction",
        '{"instruction": "  ", "output": "y"}': "has no instruction",
        '{"instruction": "a"}': 'has no "output"',
        '{"instruction": "a", "output": "c", "choices": ["a", "b"]}': "is not one of its choices",
        "[1, 2]": "not an object",
        "{oops": "not valid JSON",
    }
    for line, message in bad.items():
        good.write_text(line + "\n")
        with pytest.raises(PezError, match=message):
            read_gist_data(good)
    mixed = planted(range(3))  # 4 instructions x 3
    assert [e.instruction for e in spread(mixed, 5)] == [ASK[w] for w in COLOURS] + [ASK["red"]]


def _copy(folder, to, change=None, **edit):
    """A copy of a gist model folder; ``change`` names a weight matrix to replace with random values (a model
    that differs from the original in one matrix); ``edit`` sets gist.json fields."""
    import shutil
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    to = Path(shutil.copytree(folder, to))
    if change is not None:
        weights = load_file(to / "model.safetensors")
        weights[change] = torch.randn_like(weights[change]) * weights[change].std()
        save_file(weights, to / "model.safetensors", metadata={"format": "pt"})
    if edit:
        info = json.loads((to / "gist.json").read_text())
        (to / "gist.json").write_text(json.dumps(info | edit))
    return to


MATRIX = "model.layers.0.mlp.down_proj.weight"


def test_a_gist_file_is_refused_by_a_model_that_differs_in_one_weight_matrix(trained, tmp_path, capsys):
    from pez.gist.model import signature, weights_fingerprint

    gist = tmp_path / "red.pt"
    gist_compress(trained.out, ASK["red"], out=gist, device="cpu")
    assert gist_generate(trained.out, gist, "item 3", max_new_tokens=2, device="cpu") is not None
    # the copy as it is, with its original gist.json: the weights are not the ones gist.json was written for
    changed = _copy(trained.out, tmp_path / "changed", change=MATRIX)
    code, _, err = _run(capsys, "gist", "generate", "--model", changed, "--gist", gist, "--input", "item 3",
                        "--device", "cpu")  # fmt: skip
    _one_line(code, err, "its weights are not the ones gist.json was written for")
    # the same copy made consistent (its own fingerprint, signed): a model of its own, so the file is another's
    info = json.loads((changed / "gist.json").read_text())
    info["weights_sha256"] = weights_fingerprint(load_lm(str(changed), "cpu").model)
    info["signature"] = signature(info)
    (changed / "gist.json").write_text(json.dumps(info))
    model = load_gist_model(changed)
    assert model.identity()["gist_embedding_sha256"] == GistCache.load(gist).identity["gist_embedding_sha256"]
    with pytest.raises(PezError, match="was made by another model") as e:
        gist_generate(model, gist, "item 3", device="cpu")
    assert "weights_sha256" in str(e.value)


def test_an_edited_gist_json_is_refused(trained, tmp_path):
    from pathlib import Path

    k = json.loads((Path(trained.out) / "gist.json").read_text())["k"]
    with pytest.raises(PezError, match=f"says k {k + 1} but the training run .* used {k}"):
        load_gist_model(_copy(trained.out, tmp_path / "a", k=k + 1))
    edited = _copy(trained.out, tmp_path / "b", k=k + 1)
    (edited / "training.json").unlink()  # no training record to compare with: the signature still holds K
    with pytest.raises(PezError, match="gist.json was edited after training"):
        load_gist_model(edited)
    with pytest.raises(PezError, match="k must be a whole number"):
        load_gist_model(_copy(trained.out, tmp_path / "c", k="2"))


def test_an_empty_input_is_refused_unless_the_model_learnt_rows_without_one(tiny, trained, tmp_path, capsys):
    gist = tmp_path / "red.pt"
    gist_compress(trained.out, ASK["red"], out=gist, device="cpu")
    for text in ["", "   "]:
        code, out, err = _run(capsys, "gist", "generate", "--model", trained.out, "--gist", gist, "--input", text,
                              "--device", "cpu")  # fmt: skip
        _one_line(code, err, "--input is empty")
        assert out == ""
    rows = [GistExample(ASK[w], "", w) for w in COLOURS] * 2  # instructions without inputs
    model = gist_train(tiny, GistData(rows, rows[:2]), k=1, steps=1, out=tmp_path / "m", device="cpu")
    assert json.loads((tmp_path / "m" / "gist.json").read_text())["rows_without_input"] == 8
    gist_compress(model.out, ASK["red"], out=tmp_path / "m.pt", device="cpu")
    assert isinstance(gist_generate(model.out, tmp_path / "m.pt", "", max_new_tokens=2, device="cpu"), str)


def test_a_lora_gist_model_loads_with_its_fingerprint(tiny, tmp_path):
    """LoRA merged into the weights before saving: the fingerprint written is the reloaded model's."""
    report = gist_train(tiny, GistData(planted(range(4)), planted(range(4, 6))), k=1, steps=1, lora=True,
                        lora_rank=2, out=tmp_path / "lora", device="cpu")  # fmt: skip
    gm = load_gist_model(report.out)
    assert gm.identity()["weights_sha256"] == gm.info["weights_sha256"]
