"""``pez discover``: a task prompt for a causal LM (classification data -> a readable prompt), optionally chosen on
an API model (``--target``)."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import (
    EXIT_INTERRUPTED,
    ProgressBar,
    add_budget_option,
    add_fields,
    add_lm_options,
    add_search_options,
    add_task_options,
    given_budget,
    given_config,
    given_fields,
    quiet_libraries,
    stop_line,
)
from pez.errors import PezError


def add_parser(sub) -> None:
    from pez.evaluation.options import ApiSearchOptions
    from pez.jobs.lm import LM_DEFAULTS

    p = sub.add_parser("discover", help="a task prompt for a causal LM: classification data -> a readable prompt")
    add_lm_options(p)
    add_task_options(p, "{prompt} {text} It was", "negative,positive")
    p.add_argument("--eval-data", metavar="D", help="dev data that picks the best prompt (default: split of --data)")
    p.add_argument("--test-data", metavar="D", help="held-out data for the report (default: split of --data)")
    p.add_argument("--baseline-prompt", action="append", default=[], metavar="P", help="hand-written prompt to report")
    p.add_argument("--dev-size", type=int, default=64, metavar="N", help="dev examples used in the search (64)")
    p.add_argument("--test-size", type=int, metavar="N", help="cap on held-out examples (default all)")
    p.add_argument("--train-size", type=int, metavar="N", help="cap on training examples (default all)")
    g = p.add_argument_group("API target (the local model searches, the API model chooses)")
    add_fields(g, [ApiSearchOptions])  # generated from the dataclass, as the method options are
    add_readable_option(p)
    add_search_options(p, defaults=LM_DEFAULTS)
    add_budget_option(p)
    p.set_defaults(run=run)


def add_readable_option(p) -> None:
    """``--readable`` of the LM jobs (discover, compress)."""
    what = ("readable mode: an instruction that reads as English (APE's proposals, or --init-text, refined by "
            "gradient and LM swaps under the LM prior); leave --method out")  # fmt: skip
    p.add_argument("--readable", action=argparse.BooleanOptionalAction, default=False, help=what)


def run_search(job, args: argparse.Namespace, **kwargs) -> int:
    """Shared by discover and compress: progress bar, report, JSON, exit code."""
    config = given_config(args)
    budget = given_budget(args)
    quiet_libraries()
    with ProgressBar(args.quiet) as bar:
        report = job(
            budget=budget,
            model=args.model,
            method=args.method,
            fluency=args.fluency,
            device=args.device,
            callback=bar,
            checkpoint=args.checkpoint,
            resume=args.resume,
            judge=args.judge,
            readable=args.readable,
            **kwargs,
            **config,
        )
    print(report.prompt)
    print(report.summary(), file=sys.stderr)
    stopped = stop_line((report.search or {}).get("timings", {}), budget)
    if stopped:
        print(stopped, file=sys.stderr)
    for line in readable_lines(report):
        print(line, file=sys.stderr)
    if args.out:
        report.save(args.out)
    if report.interrupted:
        where = f"; saved to {args.out}" if args.out else ""
        print(f"interrupted: best prompt so far{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def readable_lines(report) -> list[str]:
    """What readable mode adds to the summary: where it started and what the search added; which prompt an API
    chose and why."""
    lines = []
    info = report.search.get("extras", {}).get("readable")
    if info:
        start = "your --init-text" if info["start_from"] == "init-text" else "APE's best instruction"
        line = f"readable: started from {start} {info['start']!r}"
        if info.get("start_accuracy") is not None:
            line += f" (held-out {info['start_accuracy']:.4f}; the search added {info['gain']:+.4f})"
        elif info.get("kl_start") is not None:
            line += f" (held-out KL {info['kl_start']:.4f})"
        if info.get("refined_from") not in (None, info["start"]):
            line += f"; APE's variation {info['refined_from']!r} scored better on dev and was refined"
        lines.append(line)
    choice = getattr(report, "api", {}).get("choice")
    if choice:
        lines.append(f"API choice: {choice['why']}")
    return lines


def api_target(args: argparse.Namespace):
    """The API target options given, as :class:`ApiSearchOptions` (None without --target; none of them is
    allowed without it)."""
    from pez.evaluation.options import ApiSearchOptions

    given = given_fields(args, ApiSearchOptions)
    if "target" not in given:
        if given:
            flag = "--" + next(iter(given)).replace("_", "-")
            raise PezError(f"{flag} needs --target openai:MODEL (the API model to choose the prompt on)")
        return None
    return ApiSearchOptions(**given)


def run(args: argparse.Namespace) -> int:
    from pez import discover

    api = api_target(args)
    task = dict(
        data=args.data,
        template=args.template,
        labels=args.labels,
        eval_data=args.eval_data,
        test_data=args.test_data,
        baseline_prompts=args.baseline_prompt,
        dev_size=args.dev_size,
        test_size=args.test_size,
        train_size=args.train_size,
    )
    if api is not None and api.dry_run:
        plan = discover(model=args.model, method=args.method, device=args.device, api=api, **task,
                        **given_config(args))  # fmt: skip
        print(plan.summary())
        if args.out:
            plan.save(args.out)
        return 0
    return run_search(discover, args, api=api, **task)
