"""A Ctrl-C or SIGTERM during a pez call reaches the program that called it (pez.interrupts): the search keeps its
best prompt, then the call raises pez.Interrupted with it (or hands the signal to the caller's own handler); the
caller can ask for the result back instead (on_signal="return"); the pez command keeps its own behaviour."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest

import pez

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals")

TWICE = textwrap.dedent(
    """
    import json, os, signal, sys
    import pez

    sig = getattr(signal, sys.argv[1])

    def stop_at_2(p):
        if p.step == 2:
            os.kill(os.getpid(), sig)  # as a user's Ctrl-C or a scheduler's SIGTERM, during the search

    search = dict(texts=["a horse"], model="minilm", device="cpu", prompt_len=3, sync_every=1, restarts=1, judge=None)
    try:
        pez.invert(callback=stop_at_2, checkpoint=sys.argv[2], steps=40, **search)
        print("first returned", flush=True)
    except KeyboardInterrupt as e:
        res = getattr(e, "result", None)
        kept = {"type": type(e).__name__, "signum": getattr(e, "signum", None)}
        if res is not None:
            kept |= {"text": res.text, "interrupted": res.interrupted, "steps_done": res.steps_done}
        print(json.dumps(kept), flush=True)
        raise
    pez.invert(steps=2, **search)
    print("second search ran", flush=True)
    """
)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_first_search_ends_a_script_that_calls_invert_twice(tmp_path, sig):
    script = tmp_path / "twice.py"
    script.write_text(TWICE)
    ck = tmp_path / "run.ckpt"
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(pez.__file__).parents[1])}  # the pez under test
    proc = subprocess.run([sys.executable, str(script), sig, str(ck)], capture_output=True, text=True, timeout=300,
                          env=env)  # fmt: skip
    assert "second search ran" not in proc.stdout and "first returned" not in proc.stdout, proc.stdout
    assert proc.returncode != 0  # the program ended: an uncaught KeyboardInterrupt
    kept = json.loads(proc.stdout.strip().splitlines()[-1])
    assert kept["type"] == "Interrupted" and kept["signum"] == getattr(signal, sig)
    assert kept["interrupted"] and kept["steps_done"] == 2 and kept["text"]  # the best prompt, handed to the caller
    assert "pez.Interrupted" in proc.stderr and ck.exists()  # and in the checkpoint, as before


def ctrl_c_at(step: int, sig=signal.SIGINT):
    def callback(p):
        if p.step == step:
            os.kill(os.getpid(), sig)

    return callback


CFG = dict(prompt_len=4, steps=20, sync_every=1, restarts=1, seed=0)


def test_interrupted_carries_the_result_and_puts_the_handlers_back(tiny, tmp_path):
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car on a road"])
    ck = tmp_path / "c.ckpt"
    with pytest.raises(pez.Interrupted) as caught:
        pez.optimize(obj, pez.PEZConfig(**CFG), callback=ctrl_c_at(3), checkpoint=ck)
    res = caught.value.result
    assert isinstance(caught.value, KeyboardInterrupt) and caught.value.signum == signal.SIGINT
    assert res.interrupted and res.steps_done == 3 and res.text
    assert ck.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)

    def stop(p):  # a callback's own KeyboardInterrupt (the documented way to stop a search) is no signal
        if p.step == 2:
            raise KeyboardInterrupt

    res = pez.optimize(obj, pez.PEZConfig(**CFG), callback=stop)
    assert res.interrupted and res.steps_done == 2


def test_the_caller_can_ask_for_the_result_back(tiny):
    """on_signal="return" (per call) or pez.on_signal("return") (a block): the old way, the program goes on."""
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car on a road"])
    res = pez.optimize(obj, pez.PEZConfig(**CFG), callback=ctrl_c_at(3), on_signal="return")
    assert res.interrupted and res.steps_done == 3
    with pez.on_signal("return"):
        res = pez.optimize(obj, pez.PEZConfig(**CFG), callback=ctrl_c_at(4))
        assert res.interrupted and res.steps_done == 4
        with pytest.raises(pez.Interrupted):  # a call's own keyword wins over the block
            pez.optimize(obj, pez.PEZConfig(**CFG), callback=ctrl_c_at(2), on_signal="raise")
    with pytest.raises(pez.PezError, match="on_signal"):
        pez.optimize(obj, pez.PEZConfig(**CFG), on_signal="ignore")


def test_a_handler_of_the_caller_gets_the_signal_after_the_search(tiny):
    """A program with its own SIGTERM handler: pez keeps the best prompt, then the handler runs once, as if pez
    had not taken the signal, and the call returns the result."""
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car on a road"])
    seen = []

    def handler(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        res = pez.optimize(obj, pez.PEZConfig(**CFG), callback=ctrl_c_at(3, signal.SIGTERM))
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert res.interrupted and res.steps_done == 3
    assert seen == [signal.SIGTERM]


def test_a_ctrl_c_between_runs_of_a_comparison_reaches_the_caller_with_the_runs_kept(tiny):
    """Outside any search (a comparison's callback between two runs): compare keeps the finished run, then the
    Ctrl-C reaches the caller. Its runs are pez's own optimize calls, which return (a nested call never raises)."""
    model, tok = tiny
    obj = pez.CLIPObjective(model, tok, texts=["a red car on a road"])

    def after_each_run(run):
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(pez.Interrupted) as caught:
        pez.compare(obj, ["random", "pez"], seeds=1, budget_steps=2, config={"prompt_len": 3}, callback=after_each_run,
                    judge=None)  # fmt: skip
    result = caught.value.result
    assert result.stopped_early and [r.method for r in result.runs] == ["random"]
