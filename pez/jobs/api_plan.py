"""What an API search would spend, computed without sending anything (``pez discover --target ... --dry-run``).

Requests are upper bounds: the server check (none when its verdict is in the cache), the choice (the budget
left after the check) and the held-out evaluation (every held-out example, for each prompt reported, times
the requests an example costs: one per label for log-probability scoring, up to three per label on a server
whose echo is shifted, one for parsing). Tokens are estimated with the local model's tokenizer, with the
searched prompt counted at its full length; answers already in the cache are not paid again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pez.models import LoadedModel
from pez.records import Record

CHAT_OVERHEAD = 12  # tokens a chat template adds around the messages, about


@dataclass
class ApiPlan(Record):
    """What an API search would spend (``--dry-run``): requests and tokens, at most, per phase."""

    target: str
    base_url: str
    scoring: str
    requests: dict
    tokens: dict
    n_dev: int
    n_test: int
    prompts: list[str]
    note: str = ""

    def summary(self) -> str:
        r, t = self.requests, self.tokens
        rows = [
            ("server check", "check", ""),
            ("choosing the prompt", "selection", f" (at most; {self.n_dev} dev examples)"),
            ("held-out evaluation", "held_out", f" ({self.n_test} examples x {len(self.prompts)} prompts)"),
        ]
        lines = [f"dry run: nothing sent to {self.base_url} ({self.target}); scoring {self.scoring}"]
        for label, k, what in rows:
            lines.append(f"  {label:<22}{r[k]:>7} requests  ~{t[k]:>9} tokens{what}")
        lines.append(f"  {'total':<22}{sum(r.values()):>7} requests  ~{sum(t.values()):>9} tokens")
        return "\n".join(lines + ([f"  {self.note}"] if self.note else []))


def plan(name: str, base_url: str, budget: int, model, task, api_dev, test, baseline_prompts, cfg, opts) -> ApiPlan:
    """The :class:`ApiPlan` of an API search (see the module docstring); reads the cache, sends nothing."""
    from pez.evaluation.client import ResponseCache, api_root
    from pez.evaluation.remote import PARSE_MAX_TOKENS, TOP_STEPS, instruction_for

    root = api_root(base_url)
    check = None
    if opts["scoring"] != "parse":
        cache = opts["cache"]
        if cache is None:
            from pez.cache import cache_dir

            cache = cache_dir("api") / "responses.sqlite"
        stored = ResponseCache(cache)
        check = stored.get_check(root, name)
        stored.close()
    verdict = check["verdict"] if check else None
    if opts["scoring"] == "parse" or (verdict is not None and verdict not in ("aligned", "shifted")):
        scoring = "parse"
    elif verdict == "shifted":
        scoring = "logprob-corrected"
    else:
        scoring = "logprob"
    unknown = opts["scoring"] != "parse" and check is None
    note = (
        "the server is not checked yet: log-probability scoring assumed (a server with a shifted echo costs up to "
        f"{1 + len(TOP_STEPS)} requests per label, parsing 1 per example)"
        if unknown
        else ""
    )
    labels = len(task.verbalizer.labels)
    per_example = {"parse": 1, "logprob": labels, "logprob-corrected": (1 + len(TOP_STEPS)) * labels}[scoring]
    n_check = 0 if opts["scoring"] == "parse" or check else 2
    prompts = ["(chosen on the API)", "(local search alone)", "", *dict.fromkeys(baseline_prompts)]
    tok = _tokenizer(model)
    words = [w.strip() for w in task.verbalizer.words]
    instruction = instruction_for(words)

    def tokens(prompt: str | None, text: str) -> int:
        """Tokens of one request for ``prompt`` (None: a searched prompt of full length) on ``text``."""
        filled = task.template.fill(prompt or "", text)
        extra = cfg.prompt_len if prompt is None else 0
        if scoring == "parse":
            return len(tok.encode(filled + "\n" + instruction)) + extra + CHAT_OVERHEAD + PARSE_MAX_TOKENS
        return len(tok.encode(filled + task.continuation(0))) + extra + 1

    per_dev = sum(tokens(None, e.text) for e in api_dev) / max(1, len(api_dev))
    searched = [None, None]  # the chosen prompt and the local search's, of full length
    counted = searched + prompts[len(searched) :]
    held_out = sum(tokens(p, e.text) for p in counted for e in test) * per_example
    selection = max(0, budget - n_check)
    return ApiPlan(
        target=f"openai:{name}",
        base_url=root,
        scoring=scoring,
        requests={"check": n_check, "selection": selection, "held_out": len(test) * len(prompts) * per_example},
        tokens={"check": 16 * n_check, "selection": round(selection * per_dev), "held_out": held_out},
        n_dev=len(api_dev),
        n_test=len(test),
        prompts=prompts,
        note=note,
    )


def _tokenizer(model):
    """The local model's tokenizer, loaded alone (the model itself is not needed to count tokens)."""
    if isinstance(model, LoadedModel):
        return model.tokenizer
    import os

    from transformers import AutoTokenizer

    from pez.errors import PezError
    from pez.models.lm import smollm2_folder

    path = smollm2_folder() if model == "smollm2" else os.path.expanduser(model)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError) as e:
        why = str(e).splitlines()[0][:120]
        raise PezError(f"cannot load the tokenizer of {model!r} to count tokens ({why})") from None
