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

import dataclasses
import logging
import math
import statistics
from collections.abc import Callable, Sequence

import torch

from pez.errors import PezError
from pez.evaluation.client import BudgetSpent, KeyRefused
from pez.evaluation.options import ApiSearchOptions
from pez.jobs.lm import LMTask, task_report
from pez.models.lm import load_judge
from pez.optim import optimize_each
from pez.optim.config import OptimizerConfig
from pez.records import ApiPlan, ApiSearchReport
from pez.text.readability import readability_of

log = logging.getLogger(__name__)

TEST_SIZE = 200  # held-out examples scored through the API when --test-size is not given
SYNC_SHARE = 0.5  # share of the selection budget spread over the syncs; the rest is for the end
FINAL_ROUNDS = 8  # swap rounds at the end at most; they stop earlier after two without a better prompt
FIRST_ANSWERS = 3  # dev examples scored before the search until one answer reads as a label (none: an error)


def discover_with_api(
    task: LMTask,
    api: ApiSearchOptions,
    cfg: OptimizerConfig,
    *,
    baseline_prompts: Sequence[str] = (),
    fluency: float = 0.0,
    callback: Callable | None = None,
    checkpoint=None,
    resume: bool = False,
    judge: str | None = "smollm2",
    search: Callable | None = None,
    readable: bool = False,
) -> ApiSearchReport | ApiPlan:
    """:func:`pez.discover` with an API target: the local model searches, the API model chooses.

    Args:
        task: the task; its ``test_size`` defaults to 200 here (held-out examples sent through the API).
        api: the target (``openai:MODEL``), the endpoint, the request budget (``api_budget``: the server check and
            the choice; the held-out evaluation comes on top), ``api_token_budget``, ``api_dev_size`` (dev
            examples the API scores, 16), ``api_swaps`` (gradient swaps per round, 4), ``dry_run`` (return an
            :class:`ApiPlan` and send nothing), scoring, timeouts, retries, concurrency, backoff.
        cfg: the method's config.
        baseline_prompts, fluency, callback, checkpoint, resume: as in :func:`pez.discover`.
        search: the local search as ``search(objective, callback) -> PromptResult`` (default: ``cfg``'s method).
        readable: the candidates are readable texts (readable mode): no gradient swaps are raced, and the last
            race takes the readable search's own candidates (``extras["readable"]["candidates"]``).
    """
    from pez.data import stratified_sample
    from pez.evaluation.remote import open_client

    if task.test_size is None:
        task = dataclasses.replace(task, test_size=TEST_SIZE)
    data = task.load()
    task.check_classes(data)
    if not data.test or not data.dev:
        raise PezError(f"{task.data} leaves no dev or held-out examples: give --eval-data / --test-data or more data")
    api_dev = stratified_sample(data.dev, api.api_dev_size)
    if api.dry_run:
        from pez.jobs.api_plan import plan

        return plan(api, task, api_dev, data.test, baseline_prompts, cfg)
    client = open_client(api)
    try:
        return _choose_on_api(client, api, task, data, api_dev=api_dev, cfg=cfg, baseline_prompts=baseline_prompts,
                              fluency=fluency, callback=callback, checkpoint=checkpoint, resume=resume,
                              judge=judge, search=search, readable=readable)  # fmt: skip
    finally:
        client.close()


def _choose_on_api(api, opts: ApiSearchOptions, lmtask: LMTask, data, *, api_dev, cfg, baseline_prompts, fluency,
                   callback, checkpoint, resume, judge, search=None, readable=False) -> ApiSearchReport:  # fmt: skip
    from pez.evaluation.local import evaluate_local
    from pez.evaluation.remote import RemoteScorer, choose_scoring, server_said
    from pez.evaluation.selection import ApiSelector
    from pez.objectives.lm import ClassificationObjective, LMPath, perplexity

    task, name, budget = lmtask.task, opts.model_name, opts.api_budget
    train, dev, test = data.train, data.dev, data.test
    api.max_requests, api.max_tokens = budget, opts.api_token_budget
    # a refused key stops here, before the LM loads
    scoring, reason, check = choose_scoring(api, name, opts.scoring, opts.recheck_server)
    scorer = RemoteScorer(api, name, task, scoring, opts.prompt_role)
    # a shifted server: an echo per label, and one generation shared by the labels (rarely a second)
    per_example = scorer.per_example + (1 if scoring == "logprob-corrected" else 0)
    need = per_example * len(api_dev)
    if api.sent + need > budget:
        raise PezError(
            f"--api-budget {budget} cannot score one prompt on {len(api_dev)} dev examples by {scoring} "
            f"({need} requests after the server check's {api.sent}): raise it or lower --api-dev-size"
        )
    # real answers before the LM loads (the server check may pass on a server whose answers are not OpenAI's,
    # or hold nothing usable: it then only says "no log-probabilities"): until one reads as a label; a server
    # none of whose first answers does stops here, not after the search
    try:
        first = []
        for example in api_dev[:FIRST_ANSWERS]:
            text = baseline_prompts[0] if baseline_prompts else ""
            first.append(scorer.score(text, example.text))
            if first[-1]["best"] is not None:
                break
        else:
            raise PezError(
                f"none of the first {len(first)} answers could be read as a label "
                f"({', '.join(task.verbalizer.labels)}): the server sent {server_said(first)} "
                f"({scoring} scoring; {reason}): check that --base-url serves a working model"
            )
    except (KeyRefused, BudgetSpent):
        raise
    except PezError as e:
        raise PezError(f"{e} (the first scoring requests, before the search: nothing was searched)") from None
    gold = [task.verbalizer.index(e.label) for e in api_dev]
    selector = ApiSelector(scorer, api_dev, gold, per_example=per_example)
    lm = lmtask.lm()
    obj = ClassificationObjective(lm.model, lm.tokenizer, task, train, dev, fluency=fluency, model_name=lm.spec)
    syncs = max(1, math.ceil(cfg.steps / cfg.sync_every))
    gen = torch.Generator(device=obj.vocab.embeddings.device).manual_seed(cfg.seed)
    swapper = _Swaps(obj, cfg, gen)
    spent0 = api.sent

    def race(candidates: list[str], allowance: int, step: int | None) -> None:
        if selector.stopped_by is not None or allowance <= 0:
            return
        base = selector.incumbent or (candidates[0] if candidates else "")
        swaps = [] if readable else swapper(base, opts.api_swaps, exclude=selector.outcomes.keys())
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
        texts = [p.best_text] + [obj.vocab.decode(row) for row in (p.ids.tolist() if p.ids is not None else [])]
        race([t for t in dict.fromkeys(texts) if t], allowance, p.step)

    if search is not None:
        res = search(obj, at_sync)
    else:
        (res,) = optimize_each(obj, cfg, callback=at_sync, checkpoint=checkpoint, resume=resume, judge=judge)
    described = {**data.described, "used": data.used | {"api_dev": {"size": len(api_dev)}}}
    report = task_report(ApiSearchReport, res, lm.spec, lmtask.data, described, target=f"openai:{name}",
                         local_prompt=res.text)  # fmt: skip
    try:
        if not res.interrupted:
            own = res.extras.get("readable", {}).get("candidates", [])
            race([res.text] + [r["text"] for r in res.restarts] + own, budget - api.sent, None)
            stale = 0
            for _ in range(FINAL_ROUNDS):
                if selector.stopped_by is not None or stale >= 2 or selector.incumbent is None:
                    break
                before = selector.incumbent
                race([], budget - api.sent, None)
                stale = stale + 1 if selector.incumbent == before else 0
        # the API chose only if a prompt was scored on all its dev examples within the budget
        chose = selector.incumbent is not None and selector.accuracy(selector.incumbent) is not None
        chosen = selector.incumbent if chose else res.text
        if chosen != report.prompt:  # the API chose another text: its own readability
            report.readability = readability_of(chosen, load_judge(judge, obj.vocab.embeddings.device), res.config)
        report.prompt = chosen
        report.ids = obj.vocab.encode(chosen)
        report.dev_accuracy = selector.accuracy(chosen)
        search_requests, search_tokens = api.sent, api.tokens
        api.max_requests = api.max_tokens = None
        path = LMPath(lm.model, lm.tokenizer)
        local = evaluate_local(res.text, test, task, lm.model, lm.tokenizer, lm.spec, lmtask.data, path=path)
        report.local_accuracy = local.accuracy
        report.perplexity = perplexity(obj.path, report.ids) if len(report.ids) > 1 else None
        report.api = {
            "base_url": api.root,
            "scoring": scoring,
            "scoring_reason": reason,
            "server_check": check,
            "prompt_role": str(opts.prompt_role),
            "budget": budget,
            "token_budget": opts.api_token_budget,
            "rounds": selector.rounds,
            "stopped_by": selector.stopped_by,
            "chosen_on_api": chose,
            "choice": _why(selector, chosen, chose, readable),
            "unreadable": {"search": selector.unreadable},
            "requests": {"search": search_requests},
            "tokens": {"search": search_tokens},
        }
        _held_out(report, scorer, test, task, baseline_prompts, opts.concurrency)
        report.api["requests"]["held_out"] = api.sent - search_requests
        report.api["tokens"]["held_out"] = api.tokens - search_tokens
        report.api["cached"] = api.hits
    except KeyboardInterrupt:
        report.interrupted = True
        log.warning("interrupted after the search: keeping the prompt, without the remaining scores")
    return report


def _held_out(report: ApiSearchReport, scorer, test, task, baseline_prompts, concurrency: int) -> None:
    """API accuracies on the held-out examples; an API failure, or answers none of which reads as a label, leave
    them None and say why in the report (``api["held_out_error"]``); unreadable answers are counted
    (``api["unreadable"]["held_out"]``) and count as wrong."""
    from pez.evaluation.remote import server_said

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
    unread = [d["out"] for d in done if d["best"] is None]
    report.api["unreadable"]["held_out"] = len(unread)
    if done and len(unread) == len(done):
        report.api["held_out_error"] = (
            f"none of the {len(done)} held-out answers could be read as a label: the server sent {server_said(unread)}"
        )
        log.warning("the held-out evaluation on the API failed: %s", report.api["held_out_error"])
        return
    if unread:
        log.warning("%d of %d held-out answers could not be read as a label and count as wrong (the server sent %s)",
                    len(unread), len(done), server_said(unread))  # fmt: skip
    for d in done:
        results.setdefault(prompts[d["prompt"]], []).append(d)

    def acc(prompt: str) -> float:
        rows = results[prompt]
        return sum(r["best"] == gold[r["index"]] for r in rows) / len(rows)

    def gain(other: str) -> dict:  # paired on the same examples: the standard error of the mean difference
        right = {p: {r["index"]: r["best"] == gold[r["index"]] for r in results[p]} for p in (report.prompt, other)}
        d = [right[report.prompt][k] - right[other][k] for k in right[report.prompt]]
        se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else math.nan
        return {"gain": statistics.fmean(d), "se": se}

    v = task.verbalizer
    report.accuracy, report.n_test = acc(report.prompt), len(test)
    report.transfer_accuracy = acc(report.local_prompt)
    report.baseline_accuracy = acc("")
    report.baseline_prompts = {p: acc(p) for p in baseline_prompts}
    report.api["gains"] = {p: gain(p) for p in dict.fromkeys(["", report.local_prompt, *baseline_prompts])}
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


def _why(selector, chosen: str, chose: bool, readable: bool) -> dict:
    """Which prompt the API chose and why: its accuracy and mean margin on the API's dev examples against the
    others scored on all of them."""
    full = [p for p in selector.outcomes if selector.accuracy(p) is not None]
    scored = [{"prompt": p, "examples": len(got), "dev_accuracy": selector.accuracy(p)}
              for p, got in selector.outcomes.items()]  # fmt: skip
    kind = "readable candidates" if readable else "candidates"
    if not chose:
        why = f"no prompt was scored on all {selector.n} API dev examples within the budget: the local search's is kept"
        return {"chosen": chosen, "raced": len(selector.outcomes), "scored_on_all": 0, "why": why, "scored": scored}
    acc, margin = selector.key(chosen)
    others = sorted((selector.key(p)[0] for p in full if p != chosen), reverse=True)
    runner = f"; the next best {others[0]:.3f}" if others else ""
    why = (f"best on the API's {selector.n} dev examples: accuracy {acc:.3f} (mean label margin {margin:.3f}) among "
           f"{len(full)} {kind} scored on all of them, {len(selector.outcomes)} raced{runner}")  # fmt: skip
    return {"chosen": chosen, "raced": len(selector.outcomes), "scored_on_all": len(full), "dev_accuracy": acc,
            "why": why, "scored": scored}  # fmt: skip


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
