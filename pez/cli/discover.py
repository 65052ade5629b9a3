"""``pez discover`` (a task prompt for a causal LM) and ``pez compress`` (a long instruction -> a few tokens)."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import (
    EXIT_INTERRUPTED,
    ProgressBar,
    add_lm_options,
    add_search_options,
    add_task_options,
    given_config,
    quiet_libraries,
)
from pez.errors import PezError


def add_parsers(sub) -> None:
    from pez.jobs.lm_tasks import LM_DEFAULTS

    p = sub.add_parser("discover", help="a task prompt for a causal LM: classification data -> a readable prompt")
    add_lm_options(p)
    add_task_options(p, "{prompt} {text} It was", "negative,positive")
    p.add_argument("--eval-data", metavar="D", help="dev data that picks the best prompt (default: split of --data)")
    p.add_argument("--test-data", metavar="D", help="held-out data for the report (default: split of --data)")
    p.add_argument("--baseline-prompt", action="append", default=[], metavar="P", help="hand-written prompt to report")
    p.add_argument("--dev-size", type=int, default=64, metavar="N", help="dev examples used in the search (64)")
    p.add_argument("--test-size", type=int, metavar="N", help="cap on held-out examples (default all)")
    p.add_argument("--train-size", type=int, metavar="N", help="cap on training examples (default all)")
    add_api_target_options(p)
    add_search_options(p, defaults=LM_DEFAULTS)
    p.set_defaults(run=run_discover)

    p = sub.add_parser("compress", help="a long instruction -> a few hard tokens with the same effect (KL)")
    add_lm_options(p)
    p.add_argument("--instruction", required=True, metavar="TEXT", help="the long instruction to compress")
    add_task_options(p, "{prompt}\n{text}", None, data_default=None)
    p.add_argument("--inputs", type=int, default=48, metavar="N", help="training inputs (default 48)")
    p.add_argument("--test-size", type=int, default=200, metavar="N", help="held-out examples for accuracy (200)")
    add_search_options(p, defaults=LM_DEFAULTS)
    p.set_defaults(run=run_compress)


def _run(job, args: argparse.Namespace, **kwargs) -> int:
    """Shared by discover and compress: progress bar, report, JSON, exit code."""
    config = given_config(args)
    quiet_libraries()
    with ProgressBar(args.quiet) as bar:
        report = job(
            model=args.model,
            method=args.method,
            fluency=args.fluency,
            device=args.device,
            callback=bar,
            checkpoint=args.checkpoint,
            resume=args.resume,
            **kwargs,
            **config,
        )
    print(report.prompt)
    print(report.summary(), file=sys.stderr)
    if args.out:
        report.save(args.out)
    if report.interrupted:
        where = f"; saved to {args.out}" if args.out else ""
        print(f"interrupted: best prompt so far{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def add_api_target_options(p: argparse.ArgumentParser) -> None:
    """discover --target: the API model that chooses among the local search's prompts."""
    g = p.add_argument_group("API target (the local model searches, the API model chooses)")
    g.add_argument("--target", metavar="openai:MODEL", help="the API model to find the prompt for")
    g.add_argument("--base-url", metavar="URL", help="its OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--api-budget", type=int, metavar="N", help="requests the check and the choice may spend")
    g.add_argument("--api-token-budget", type=int, metavar="N", help="tokens the check and the choice may spend")
    g.add_argument("--api-dev-size", type=int, metavar="N", help="dev examples the API scores each prompt on (16)")
    g.add_argument("--api-swaps", type=int, metavar="N", help="gradient swaps of the API's choice per round (4)")
    g.add_argument("--api-key-env", metavar="VAR", help="env var with the API key (OPENAI_API_KEY)")
    g.add_argument("--cache", metavar="FILE", help="API response cache (default in ~/.cache/pez/api)")
    g.add_argument("--scoring", choices=["auto", "logprob", "parse"], help="API scoring (auto: the server check)")
    g.add_argument("--prompt-role", choices=["user", "system"], help="chat scoring: where the prompt goes (user)")
    g.add_argument("--timeout", type=float, metavar="S", help="seconds per API request (60)")
    g.add_argument("--max-retries", type=int, metavar="N", help="retries per API request (6)")
    g.add_argument("--dry-run", action="store_true", help="print the requests and tokens a run would spend; send none")


API_ARGS = ("api_token_budget", "api_dev_size", "api_swaps", "api_key_env", "cache", "scoring", "prompt_role",
            "timeout", "max_retries")  # fmt: skip


def api_target(args: argparse.Namespace) -> dict:
    """The API target options given (checked: none of them without --target)."""
    given = {k: getattr(args, k) for k in API_ARGS if getattr(args, k) is not None}
    if args.target is None:
        extra = [k for k in ("base_url", "api_budget") if getattr(args, k) is not None] + list(given)
        if extra or args.dry_run:
            flag = "--" + (extra[0] if extra else "dry_run").replace("_", "-")
            raise PezError(f"{flag} needs --target openai:MODEL (the API model to choose the prompt on)")
        return {}
    return {"target": args.target, "base_url": args.base_url, "api_budget": args.api_budget, **given}


def run_discover(args: argparse.Namespace) -> int:
    from pez import discover

    api = api_target(args)
    if api and args.dry_run:
        return _dry_run(args, api)
    return _run(
        discover,
        args,
        **api,
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


def _dry_run(args: argparse.Namespace, api: dict) -> int:
    """Print what discover --target would spend; send nothing, load no model."""
    from pez import discover

    config = given_config(args)
    plan = discover(
        model=args.model,
        data=args.data,
        template=args.template,
        labels=args.labels,
        eval_data=args.eval_data,
        test_data=args.test_data,
        baseline_prompts=args.baseline_prompt,
        method=args.method,
        dev_size=args.dev_size,
        test_size=args.test_size,
        train_size=args.train_size,
        device=args.device,
        dry_run=True,
        **api,
        **config,
    )
    print(plan.summary())
    if args.out:
        plan.save(args.out)
    return 0


def run_compress(args: argparse.Namespace) -> int:
    from pez import compress

    if args.labels and not args.data:
        raise PezError("--labels needs --data with labelled examples to score the task")
    return _run(
        compress,
        args,
        instruction=args.instruction,
        data=args.data,
        template=args.template,
        labels=args.labels,
        n_inputs=args.inputs,
        test_size=args.test_size,
    )
