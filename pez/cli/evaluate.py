"""``pez evaluate``: the accuracy of a text prompt on a local LM or through an OpenAI-compatible API."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import add_lm_options, add_task_options, check_output_file, quiet_libraries
from pez.errors import PezError


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a text prompt on a local LM or an OpenAI-compatible API")
    p.add_argument("--prompt", required=True, metavar="TEXT", help='the prompt text ("" for the empty template)')
    add_lm_options(p, api=True)
    add_task_options(p, "{prompt} {text} It was", "negative,positive")
    p.add_argument("--split", default="auto", help="train, dev, test, all, or auto: a file whole, a named set's test")
    p.add_argument("--limit", type=int, metavar="N", help="at most N examples")
    p.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint for openai:MODEL")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="env var with the API key")
    p.add_argument("--cache", metavar="FILE", help="API response cache (default in ~/.cache/pez/api)")
    p.add_argument(
        "--scoring", default="auto", choices=["auto", "logprob", "parse"], help="API scoring (auto: check the server)"
    )
    p.add_argument("--prompt-role", default="user", choices=["user", "system"], help="parse scoring: prompt's message")
    p.add_argument("--recheck-server", action="store_true", help="check the server again (not the cached verdict)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per API request (60)")
    p.add_argument("--max-retries", type=int, default=6, metavar="N", help="retries per API request (6)")
    p.add_argument("--out", metavar="FILE", help="write the result (with per-example predictions) as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pez import evaluate

    check_output_file(args.out, "--out")
    quiet_libraries()
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(desc="evaluate", unit="ex", dynamic_ncols=True, file=sys.stderr)

    def callback(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    api = {}
    if args.model.startswith("openai:"):
        api = {
            "timeout": args.timeout,
            "max_retries": args.max_retries,
            "prompt_role": args.prompt_role,
            "recheck": args.recheck_server,
        }
    split = None if args.split == "all" else args.split
    try:
        result = evaluate(
            args.prompt,
            model=args.model,
            data=args.data,
            template=args.template,
            labels=args.labels,
            split=split,
            limit=args.limit,
            device=args.device,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            cache=args.cache,
            mode=args.scoring,
            callback=callback,
            **api,
        )
    except PezError as e:
        partial = getattr(e, "partial", None)
        if partial is not None and args.out:
            partial.save(args.out)
            raise PezError(f"{e} (the {partial.n} examples evaluated so far are saved to {args.out})") from None
        raise
    finally:
        if bar is not None:
            bar.close()
    if args.out:
        result.save(args.out)
    print(f"accuracy {result.accuracy:.4f} on {result.n} examples ({result.scoring} scoring)")
    if result.extras.get("scoring_reason"):
        print(f"scoring {result.scoring}: {result.extras['scoring_reason']}", file=sys.stderr)
    return 0
