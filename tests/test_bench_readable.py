"""benchmarks/bench_readable.py's reference rows and its reading of the aim: the person's paraphrases fit their token
limits under minilm's own tokenizer, and the summary's mid-phrase share and the aim's verdicts follow the runs."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_readable as bench  # noqa: E402


def test_a_person_paraphrases_every_target_within_8_and_16_minilm_tokens(minilm):
    assert list(bench.PERSON) == bench.TARGETS
    for target, (short, longer) in bench.PERSON.items():
        for text, limit in ((short, 8), (longer, 16)):
            ids = minilm.tokenizer(text, add_special_tokens=False)["input_ids"]
            assert len(ids) <= limit, (text, len(ids))
            assert text.lower().rstrip(".") != target.lower().rstrip("."), text  # a paraphrase, not the sentence


def run(method, score, ppl, text, wall=1.0, scale=None):
    return {"method": method, "scale": scale, "score": score, "perplexity": ppl, "text": text, "wall_s": wall,
            "dictionary_share": 1.0, "repeated_share": 0.0, "mid_phrase": bench.ends_mid_phrase(text),
            "judge_is_prior": False}  # fmt: skip


def test_the_summary_counts_mid_phrase_endings_and_the_aim_reads_them():
    runs = [run("pez-demo", 0.90, 10_000, "dog snow field runs", 6.0), run("pez-demo", 0.92, 20_000, "a b of", 8.0)]
    runs += [run(bench.PERSON_ROW, 0.88, 400, "Dogs running in the snow", None)] * 2
    runs += [run("readable-mode", 0.89, 300, "Dogs run through the snow", 6.0, 1.0),
             run("readable-mode", 0.90, 350, "Two dogs running across the", 6.0, 1.0)]  # fmt: skip
    runs += [run("readable-mode-default", 0.93, 250, "Two dogs in the snow", 9.0)] * 2
    summary = bench.summarise(runs)
    assert summary["pez-demo"]["mid_phrase_share"] == 0.5 and summary["pez-demo"]["seconds_median"] == 7.0
    assert summary[bench.PERSON_ROW]["seconds_median"] is None
    mode = summary["readable-mode@1T"]
    assert mode["mid_phrase_share"] == 0.5 and mode["cosine_mean"] == pytest.approx(0.895)
    aim = bench.aim(summary)
    assert aim["fidelity_met"] and aim["perplexity_met"]  # 0.895 >= 0.91 - 0.02; median 325 <= 400
    assert not aim["mid_phrase_met"]  # 1 in 2 ends on "the"
    assert not aim["time_met"] and aim["readable_default_s_median"] == 9.0  # 9 s against T = 7 s
