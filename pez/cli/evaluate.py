"""``pez evaluate``: the accuracy of a text prompt on a local LM or through an OpenAI-compatible API."""

from __future__ import annotations

import argparse
import sys

from pez.cli.options import (
    ProgressBar,
    add_fields,
    add_lm_options,
    add_task_options,
    check_output_file,
    given_fields,
    quiet_libraries,
)
from pez.errors import PezError


def add_parser(sub) -> None:
    from pez.evaluation.options import ApiOptions

    p = sub.add_parser("evaluate", help="accuracy of a text prompt on a local LM or an OpenAI-compatible API")
    p.add_argument("--prompt", required=True, metavar="TEXT", help='the prompt text ("" for the empty template)')
    add_lm_options(p, api=True)
    add_task_options(p, "{prompt} {text} It was", "negative,positive")
    p.add_argument("--split", default="auto", help="train, dev, test, all, or auto: a file whole, a named set's test")
    p.add_argument("--limit", type=int, metavar="N", help="at most N examples")
    g = p.add_argument_group("API models (--model openai:MODEL)")
    add_fields(g, [ApiOptions])  # generated from the dataclass, as the method options are
    p.add_argument("--out", metavar="FILE", help="write the result (with per-example predictions) as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    what = "refused: evaluate scores a given prompt (readable prompts are searched by discover --readable)"
    p.add_argument("--readable", action="store_true", help=what)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pez import evaluate

    if args.readable:
        raise PezError("--readable is for searches (pez discover --readable, pez compress --readable): evaluate "
                       "scores the --prompt it is given, there is nothing to search")  # fmt: skip
    check_output_file(args.out, "--out")
    quiet_libraries()
    from pez.evaluation.options import ApiOptions

    api = ApiOptions(**given_fields(args, ApiOptions))
    split = None if args.split == "all" else args.split
    try:
        with ProgressBar(args.quiet, "evaluate", "ex") as bar:
            result = evaluate(
                args.prompt,
                model=args.model,
                data=args.data,
                template=args.template,
                labels=args.labels,
                split=split,
                limit=args.limit,
                device=args.device,
                api=api,
                callback=bar,
            )
    except PezError as e:
        partial = getattr(e, "partial", None)
        if partial is not None and args.out:
            partial.save(args.out)
            raise PezError(f"{e} (the {partial.n} examples evaluated so far are saved to {args.out})") from None
        raise
    if args.out:
        result.save(args.out)
    unread = f"; {result.unreadable} unreadable answers counted wrong" if result.unreadable else ""
    print(f"accuracy {result.accuracy:.4f} on {result.n} examples ({result.scoring} scoring{unread})")
    if result.extras.get("scoring_reason"):
        print(f"scoring {result.scoring}: {result.extras['scoring_reason']}", file=sys.stderr)
    return 0
