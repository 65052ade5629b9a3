"""The API inside the search: ``discover`` a task prompt for a model behind an OpenAI-compatible API
(docs/evaluation.md#the-api-inside-the-search).

A local causal LM gives the gradients and the proposals; the API model chooses among them. At every sync of the
local search, the restarts' current prompts, the local best and the best single-token swaps of the API's current
choice (ranked by the local gradient, kept only if their text re-tokenises to them) are raced on the API's dev
examples (:class:`pez.evaluation.selection.ApiSelector`). Half of the request budget is spread over the syncs, the
rest goes to a last race over every restart's best prompt and to swap rounds from the API's choice. The server is
checked first (:mod:`pez.evaluation.probe`), so a refused key or an unusable server stops before the search.

The report gives held-out accuracy ON THE API MODEL for the API-chosen prompt, the prompt the local search alone
returns (transfer), the empty template and each baseline prompt, with the requests and tokens spent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pez.errors import PezError
from pez.evaluation.client import BudgetSpent, KeyRefused
from pez.jobs.lm_tasks import as_lm, check_device, check_size, lm_config, sample_splits, task_report
from pez.records import TaskReport
from pez.text.templates import make_task

log = logging.getLogger(__name__)

API_OPTIONS = {  # the options discover takes for an API target, with their defaults
    "api_key_env": "OPENAI_API_KEY",
    "cache": None,
    "scoring": "auto",
    "prompt_role": "user",
    "api_token_budget": None,
    "api_dev_size": 16,
    "api_swaps": 4,
    "dry_run": False,
    "timeout": 60.0,
    "max_retries": 6,
    "concurrency": 1,
    "backoff": 1.0,
}
TEST_SIZE = 200  # held-out examples scored through the API when --test-size is not given
SYNC_SHARE = 0.5  # share of the selection budget spread over the syncs; the rest is for the end
FINAL_ROUNDS = 8  # swap rounds at the end at most; they stop earlier after two without a better prompt


@dataclass
class ApiSearchReport(TaskReport):
    """A :class:`TaskReport` whose ``prompt`` was chosen on an API model and whose accuracies are the API's:
    ``accuracy`` (the chosen prompt), ``transfer_accuracy`` (``local_prompt``, what the local search alone
    returns), ``baseline_accuracy`` (empty template), ``baseline_prompts``; all on the same held-out examples.
    ``local_accuracy`` is ``local_prompt``'s held-out accuracy on the local model; ``dev_accuracy`` the chosen
    prompt's on the API's dev examples. ``api`` holds the scoring method and why, the server check, the
    requests and tokens spent, the budget and each selection round."""

    target: str = ""
    local_prompt: str = ""
    transfer_accuracy: float | None = None
    local_accuracy: float | None = None
    api: dict = field(default_factory=dict)

    def summary(self) -> str:
        a = self.api
        lines = [f"prompt (chosen on {self.target}): {self.prompt}", f"local search alone: {self.local_prompt}"]
        if self.accuracy is not None:
            lines.append(f"held-out accuracy on {self.target} ({self.n_test} examples):")
            lines.append(f"  chosen on the API        {self.accuracy:.4f}")
            lines.append(f"  local search (transfer)  {self.transfer_accuracy:.4f}")
            lines.append(f"  empty template           {self.baseline_accuracy:.4f}")
            for p, acc in self.baseline_prompts.items():
                lines.append(f"  baseline {p!r}: {acc:.4f}")
        elif a.get("held_out_error"):
            lines.append(f"no held-out accuracy on {self.target}: {a['held_out_error']}")
        if self.local_accuracy is not None:
            lines.append(f"local search's prompt on {self.model}: {self.local_accuracy:.4f}")
        lines.append(f"scoring: {a.get('scoring')} ({a.get('scoring_reason')})")
        r, t = a.get("requests", {}), a.get("tokens", {})
        lines.append(
            f"API requests: {r.get('search', 0)} of {a.get('budget')} for the check and the choice, "
            f"{r.get('held_out', 0)} held-out; tokens {t.get('search', 0)} + {t.get('held_out', 0)}; "
            f"{a.get('cached', 0)} answers from the cache"
        )
        if a.get("stopped_by"):
            lines.append(f"the choice stopped early: {a['stopped_by']}")
        return "\n".join(lines)


def split_api_options(config: dict) -> tuple[dict, dict]:
    """(API options with defaults, the rest: the method's config fields)."""
    api = {k: config.pop(k, v) for k, v in API_OPTIONS.items()}
    return api, config


def discover_with_api(
    target: str,
    base_url: str | None,
    api_budget: int | None,
    model="smollm2",
    data: str = "movie-reviews",
    template: str = "{prompt} {text} It was",
    labels="negative,positive",
    eval_data: str | None = None,
    test_data: str | None = None,
    baseline_prompts=(),
    fluency: float = 0.0,
    method: str = "pez",
    dev_size: int = 64,
    test_size: int | None = None,
    train_size: int | None = None,
    device: str | None = "auto",
    callback: Callable | None = None,
    checkpoint=None,
    resume: bool = False,
    **config,
) -> ApiSearchReport:
    """:func:`pez.discover` with ``target="openai:MODEL"``: the local ``model`` searches, the API model chooses.

    Args (beyond :func:`pez.discover`'s):
        target: ``openai:MODEL``, the model behind ``base_url``.
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        api_budget: requests the server check and the choice may send (the held-out evaluation comes on top).
        **config: the method's config fields, and the API options: ``api_key_env``, ``cache``, ``scoring``
            (auto, logprob, parse), ``prompt_role`` (user or system: where a chat request puts the prompt),
            ``api_token_budget`` (tokens the check and the choice may spend), ``api_dev_size`` (dev examples the
            API scores, 16), ``api_swaps`` (gradient swaps per round, 4), ``dry_run`` (return an
            :class:`pez.jobs.api_plan.ApiPlan` and send nothing), ``timeout``, ``max_retries``, ``concurrency``,
            ``backoff``.

    Returns:
        an :class:`ApiSearchReport`, or with ``dry_run`` an :class:`~pez.jobs.api_plan.ApiPlan`.
    """
    from pez.data import load_splits, stratified_sample
    from pez.evaluation.remote import check_api_options, open_client, parse_api_model

    opts, config = split_api_options(dict(config))
    name = parse_api_model(target)
    if name is None:
        raise PezError(f"--target {target!r} is not an API model: use openai:MODEL with --base-url")
    if not base_url:
        raise PezError("--target needs --base-url URL (an OpenAI-compatible endpoint)")
    if api_budget is None:
        raise PezError("--target needs --api-budget N: the requests the API may spend choosing the prompt")
    check_size("api-budget", api_budget, allow_none=False)
    check_size("api-token-budget", opts["api_token_budget"])
    check_size("api-dev-size", opts["api_dev_size"], allow_none=False)
    check_size("api-swaps", opts["api_swaps"], allow_none=False)
    check_api_options(opts["scoring"], opts["timeout"], opts["max_retries"], opts["concurrency"], opts["prompt_role"])
    task = make_task(template, labels)
    cfg = lm_config(method, config)
    check_device(model, device)
    if api_budget < opts["api_dev_size"] + 2:
        raise PezError(
            f"--api-budget {api_budget} cannot score even one prompt on {opts['api_dev_size']} dev examples and "
            f"check the server: give at least {opts['api_dev_size'] + 2} (log-probability scoring needs one request "
            "per label and example), or lower --api-dev-size"
        )
    splits = load_splits(data, eval_spec=eval_data, test_spec=test_data)
    train, dev, test, used = sample_splits(splits, train_size, dev_size, TEST_SIZE if test_size is None else test_size)
    if not test or not dev:
        raise PezError(f"{data} leaves no dev or held-out examples: give --eval-data / --test-data or more data")
    for e in [*train, *dev, *test]:
        task.verbalizer.index(e.label)
    api_dev = stratified_sample(dev, opts["api_dev_size"])
    if opts["dry_run"]:
        from pez.jobs.api_plan import plan

        return plan(name, base_url, api_budget, model, task, api_dev, test, baseline_prompts, cfg, opts)
    api = open_client(base_url, opts["api_key_env"], opts["cache"], opts["timeout"], opts["max_retries"],
                      opts["backoff"])  # fmt: skip
    try:
        return _search(api, name, api_budget, opts, model, task, train, dev, api_dev, test, used, splits,
                       baseline_prompts, fluency, cfg, device, callback, checkpoint, resume, data)  # fmt: skip
    finally:
        api.close()


def _search(api, name, budget, opts, model, task, train, dev, api_dev, test, used, splits, baseline_prompts,
            fluency, cfg, device, callback, checkpoint, resume, data) -> ApiSearchReport:  # fmt: skip
    from pez.evaluation.local import evaluate_local
    from pez.evaluation.remote import RemoteScorer, choose_scoring
    from pez.evaluation.selection import ApiSelector
    from pez.objectives.lm import ClassificationObjective, LMPath, perplexity
    from pez.optim import method_for

    api.max_requests, api.max_tokens = budget, opts["api_token_budget"]
    scoring, reason, check = choose_scoring(api, name, opts["scoring"])  # a refused key stops here, before the LM
    scorer = RemoteScorer(api, name, task, scoring, opts["prompt_role"])
    # a shifted server: an echo per label, and one generation shared by the labels (rarely a second)
    per_example = scorer.per_example + (1 if scoring == "logprob-corrected" else 0)
    need = per_example * len(api_dev)
    if api.sent + need > budget:
        raise PezError(
            f"--api-budget {budget} cannot score one prompt on {len(api_dev)} dev examples by {scoring} "
            f"({need} requests after the server check's {api.sent}): raise it or lower --api-dev-size"
        )
    gold = [task.verbalizer.index(e.label) for e in api_dev]
    selector = ApiSelector(scorer, api_dev, gold, per_example=per_example)
    lm = as_lm(model, device)
    obj = ClassificationObjective(lm.model, lm.tokenizer, task, train, dev, fluency=fluency, model_name=lm.spec)
    opt = _watched(method_for(cfg))(obj, cfg)
    syncs = max(1, math.ceil(cfg.steps / cfg.sync_every))
    gen = torch.Generator(device=obj.vocab.embeddings.device).manual_seed(cfg.seed)
    swapper = _Swaps(obj, cfg, gen)
    spent0 = api.sent

    def race(candidates: list[str], allowance: int, step: int | None) -> None:
        if selector.stopped_by is not None or allowance <= 0:
            return
        base = selector.incumbent or (candidates[0] if candidates else "")
        swaps = swapper(base, opts["api_swaps"], exclude=selector.outcomes.keys())
        try:
            selector.round(candidates + swaps, allowance, step)
        except KeyRefused:
            raise
        except BudgetSpent as e:
            selector.stopped_by = str(e)
        except PezError as e:  # the API failed after its retries: the local search goes on without it
            selector.stopped_by = f"API failure: {e}"
            log.warning("the API failed while choosing (%s): the local search goes on, the choice so far stays", e)

    def at_sync(p) -> None:
        if callback is not None:
            callback(p)
        k = min(syncs, max(1, round(p.step / cfg.sync_every)))
        allowance = int((budget - spent0) * SYNC_SHARE * k / syncs) - (api.sent - spent0)
        texts = [p.best_text] + [obj.vocab.decode(row) for row in opt.last_ids.tolist()]
        race([t for t in dict.fromkeys(texts) if t], allowance, p.step)

    (res,) = opt.run(callback=at_sync, checkpoint=checkpoint, resume=resume)
    used = used | {"api_dev": {"size": len(api_dev)}}
    report = task_report(ApiSearchReport, res, lm.spec, data, {**splits.describe(), "used": used},
                         target=f"openai:{name}", local_prompt=res.text)  # fmt: skip
    try:
        if not res.interrupted:
            race([res.text] + [r["text"] for r in res.restarts], budget, None)
            stale = 0
            for _ in range(FINAL_ROUNDS):
                if selector.stopped_by is not None or stale >= 2 or selector.incumbent is None:
                    break
                before = selector.incumbent
                race([], budget, None)
                stale = stale + 1 if selector.incumbent == before else 0
        chosen = selector.incumbent or res.text
        report.prompt = chosen
        report.ids = obj.vocab.encode(chosen)
        report.dev_accuracy = selector.accuracy(chosen)
        search_requests, search_tokens = api.sent, api.tokens
        api.max_requests = api.max_tokens = None
        path = LMPath(lm.model, lm.tokenizer)
        local = evaluate_local(res.text, test, task, lm.model, lm.tokenizer, lm.spec, data, path=path)
        report.local_accuracy = local.accuracy
        report.perplexity = perplexity(obj.path, report.ids) if len(report.ids) > 1 else None
        report.api = {
            "base_url": api.root,
            "scoring": scoring,
            "scoring_reason": reason,
            "server_check": check,
            "prompt_role": opts["prompt_role"],
            "budget": budget,
            "token_budget": opts["api_token_budget"],
            "rounds": selector.rounds,
            "stopped_by": selector.stopped_by,
            "requests": {"search": search_requests},
            "tokens": {"search": search_tokens},
        }
        _held_out(report, scorer, test, task, baseline_prompts, opts["concurrency"])
        report.api["requests"]["held_out"] = api.sent - search_requests
        report.api["tokens"]["held_out"] = api.tokens - search_tokens
        report.api["cached"] = api.hits
    except KeyboardInterrupt:
        report.interrupted = True
        log.warning("interrupted after the search: keeping the prompt, without the remaining scores")
    return report


def _held_out(report: ApiSearchReport, scorer, test, task, baseline_prompts, concurrency: int) -> None:
    """API accuracies on the held-out examples; an API failure leaves them None and says why in the report."""
    gold = [task.verbalizer.index(e.label) for e in test]
    prompts = list(dict.fromkeys([report.prompt, report.local_prompt, "", *baseline_prompts]))
    results: dict[str, list[dict]] = {}

    def one(i: int) -> dict:
        prompt, k = divmod(i, len(test))
        out = scorer.score(prompts[prompt], test[k].text)
        return {"prompt": prompt, "index": k, "best": out["best"], "out": out}

    done: list[dict] = []
    try:
        scorer.api.run(one, list(range(len(prompts) * len(test))), concurrency, done.append)
    except KeyRefused:
        raise
    except PezError as e:
        report.api["held_out_error"] = str(e)
        log.warning("the held-out evaluation on the API failed: %s", e)
        return
    for d in done:
        results.setdefault(prompts[d["prompt"]], []).append(d)

    def acc(prompt: str) -> float:
        rows = results[prompt]
        return sum(r["best"] == gold[r["index"]] for r in rows) / len(rows)

    v = task.verbalizer
    report.accuracy, report.n_test = acc(report.prompt), len(test)
    report.transfer_accuracy = acc(report.local_prompt)
    report.baseline_accuracy = acc("")
    report.baseline_prompts = {p: acc(p) for p in baseline_prompts}
    report.predictions = []
    for r in sorted(results[report.prompt], key=lambda r: r["index"]):
        k, best, out = r["index"], r["best"], r["out"]
        extra = {"scores": dict(zip(v.labels, out["scores"]))} if "scores" in out else {"answer": out["answer"]}
        report.predictions.append(
            {
                "index": k,
                "text": test[k].text,
                "label": v.labels[gold[k]],
                "predicted": None if best is None else v.labels[best],
                "correct": best == gold[k],
                **extra,
            }
        )


def _watched(cls):
    """The method's class, keeping the ids of the restarts' prompts evaluated at the latest step (``last_ids``,
    shape (R, L), left on the device until a sync reads them)."""

    class Watched(cls):
        last_ids: torch.Tensor | None = None

        def step(self, step: int):
            ids, loss = super().step(step)
            self.last_ids = ids
            return ids, loss

    Watched.__name__ = Watched.__qualname__ = cls.__name__
    return Watched


class _Swaps:
    """The best single-token swaps of a prompt's text by the local gradient (HotFlip's first-order score) on a
    training batch, whose text re-tokenises to them, leaving out the texts in ``exclude``."""

    def __init__(self, obj, cfg, gen: torch.Generator):
        from pez.text.vocab import VocabOptions

        self.obj, self.cfg, self.gen = obj, cfg, gen
        self.options = VocabOptions(cfg.ascii_only, cfg.whole_words, cfg.blocklist)

    def __call__(self, text: str, n: int, exclude=()) -> list[str]:
        from pez.optim.candidates import swap_scores

        vocab = self.obj.vocab
        ids = vocab.encode(text)[: vocab.max_len] if text else []
        if not ids:
            return []
        E = vocab.embeddings
        t = torch.tensor([ids], device=E.device)  # (1, L)
        hard = E[t].detach().float().requires_grad_(True)  # (1, L, D)
        group = torch.zeros(1, dtype=torch.long, device=E.device)
        loss, _ = self.obj.loss(hard, group, self.cfg.batch_size, self.gen, t)
        grad = torch.autograd.grad(loss.sum(), hard)[0]  # (1, L, D)
        allowed = vocab.allowed_masks(self.options, len(ids)).to(E.device)  # (L, V)
        scores = swap_scores(grad, E, t, allowed)[0]  # (L, V)
        top = scores.flatten().topk(min(scores.numel(), 8 * n))
        out = []
        for value, flat in zip(top.values.tolist(), top.indices.tolist()):
            if not math.isfinite(value) or len(out) == n:
                break
            pos, token = divmod(flat, scores.shape[1])
            new = ids[:pos] + [token] + ids[pos + 1 :]
            swapped = vocab.decode(new)
            if swapped not in exclude and swapped not in out and vocab.encode(swapped) == new:
                out.append(swapped)
        return out
