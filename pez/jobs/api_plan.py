"""What an API search would spend, computed without sending anything (``pez discover --target ... --dry-run``).

Requests are upper bounds: the server check (none when its verdict is in the cache), the choice (the budget
left after the check) and the held-out evaluation (every held-out example, for each prompt reported, times
the requests an example costs: one per label for log-probability scoring, up to three per label on a server
whose echo is shifted, one for parsing). Tokens are estimated with the local model's tokenizer, with the
searched prompt counted at its full length; answers already in the cache are not paid again.
"""

from __future__ import annotations

from pez.evaluation.options import ApiSearchOptions, Scoring
from pez.models import LoadedModel
from pez.records import ApiPlan

CHAT_OVERHEAD = 12  # tokens a chat template adds around the messages, about


def plan(api: ApiSearchOptions, lmtask, api_dev, test, baseline_prompts, cfg) -> ApiPlan:
    """The :class:`ApiPlan` of an API search on ``lmtask`` (see the module docstring); reads the cache, sends
    nothing."""
    from pez.evaluation.client import ResponseCache, api_root
    from pez.evaluation.remote import PARSE_MAX_TOKENS, TOP_STEPS, instruction_for

    name, budget, task, model = api.model_name, api.api_budget, lmtask.task, lmtask.model
    root = api_root(api.base_url)
    check = None
    if api.scoring != Scoring.PARSE:
        cache = api.cache
        if cache is None:
            from pez.cache import cache_dir

            cache = cache_dir("api") / "responses.sqlite"
        stored = ResponseCache(cache)
        check = stored.get_check(root, name)
        stored.close()
    verdict = check["verdict"] if check else None
    if api.scoring == Scoring.PARSE or (verdict is not None and verdict not in ("aligned", "shifted")):
        scoring = "parse"
    elif verdict == "shifted":
        scoring = "logprob-corrected"
    else:
        scoring = "logprob"
    unknown = api.scoring != Scoring.PARSE and check is None
    note = (
        "the server is not checked yet: log-probability scoring assumed (a server with a shifted echo costs up to "
        f"{1 + len(TOP_STEPS)} requests per label, parsing 1 per example)"
        if unknown
        else ""
    )
    labels = len(task.verbalizer.labels)
    per_example = {"parse": 1, "logprob": labels, "logprob-corrected": (1 + len(TOP_STEPS)) * labels}[scoring]
    n_check = 0 if api.scoring == Scoring.PARSE or check else 2
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
