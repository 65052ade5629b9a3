"""The ``pez`` command line: a thin layer over :mod:`pez.api`.

Method options are generated from the config dataclass fields (names, types, help), so the CLI and the Python
API cannot drift apart. Bad input prints one line and exits with code 2; Ctrl-C keeps the best prompt so far.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing

from pez.errors import PezError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise PezError(f"{message} (see `{self.prog} --help`)")


def _batch_size(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None


def add_config_options(parser: argparse.ArgumentParser, config_classes) -> None:
    """One option per config field (union over the classes); unset options keep the dataclass defaults."""
    seen = set()
    for cls in config_classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in seen:
                continue
            seen.add(f.name)
            flag = "--" + f.name.replace("_", "-")
            kind = hints[f.name]
            kw = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{f.metadata.get('help', '')} "}
            kw["help"] += f"(default: {f.default})" if f.default is not dataclasses.MISSING else ""
            if kind is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            elif f.name == "batch_size":
                parser.add_argument(flag, type=_batch_size, metavar="N|all", **kw)
            elif typing.get_origin(kind) is tuple:
                parser.add_argument(flag, nargs="+", metavar="WORD", **kw)
            else:
                base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
                parser.add_argument(flag, type=base, metavar=f.name.split("_")[-1].upper(), **kw)


def build_parser() -> argparse.ArgumentParser:
    from pez.models import DEFAULT_CLIP
    from pez.optim import METHODS

    parser = _Parser(prog="pez", description="Find readable hard prompts by gradient (PEZ) and compare optimisers.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    inv = sub.add_parser("invert", help="images and/or texts -> a short readable prompt")
    inv.add_argument("images", nargs="*", metavar="IMAGE", help="target image files (CLIP models)")
    inv.add_argument("--text", action="append", default=[], metavar="T", help="target text (repeatable)")
    inv.add_argument("--negative-text", action="append", default=[], metavar="T", help="text to move away from")
    inv.add_argument("--negative-image", action="append", default=[], metavar="F", help="image to move away from")
    inv.add_argument("--negative-weight", type=float, default=1.0, help="weight of each negative target (default 1)")
    inv.add_argument(
        "--model", default=DEFAULT_CLIP, help=f"minilm, st:NAME, or open_clip NAME/TAG (default {DEFAULT_CLIP})"
    )
    inv.add_argument("--method", default="pez", choices=sorted(METHODS), help="optimiser (default pez)")
    inv.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    inv.add_argument("--out", metavar="FILE", help="write the result as JSON")
    inv.add_argument("--checkpoint", metavar="FILE", help="save the optimiser state every --checkpoint-every steps")
    inv.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    inv.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(inv, [cls.config_class for cls in METHODS.values()])

    disc = sub.add_parser("discover", help="a task prompt for a causal LM: classification data -> a readable prompt")
    _lm_options(disc)
    _task_options(disc, "{prompt} {text} It was", "negative,positive")
    disc.add_argument("--eval-data", metavar="D", help="dev data that picks the best prompt (default: split of --data)")
    disc.add_argument("--test-data", metavar="D", help="held-out data for the report (default: split of --data)")
    disc.add_argument(
        "--baseline-prompt", action="append", default=[], metavar="P", help="hand-written prompt to report"
    )
    disc.add_argument("--dev-size", type=int, default=64, metavar="N", help="dev examples used in the search (64)")
    disc.add_argument("--test-size", type=int, metavar="N", help="cap on held-out examples (default all)")
    disc.add_argument("--train-size", type=int, metavar="N", help="cap on training examples (default all)")
    _search_options(disc, METHODS)

    comp = sub.add_parser("compress", help="a long instruction -> a few hard tokens with the same effect (KL)")
    _lm_options(comp)
    comp.add_argument("--instruction", required=True, metavar="TEXT", help="the long instruction to compress")
    _task_options(comp, "{prompt}\n{text}", None, data_default=None)
    comp.add_argument("--inputs", type=int, default=48, metavar="N", help="training inputs (default 48)")
    comp.add_argument("--test-size", type=int, default=200, metavar="N", help="held-out examples for accuracy (200)")
    _search_options(comp, METHODS)

    ev = sub.add_parser("evaluate", help="accuracy of a text prompt on a local LM or an OpenAI-compatible API")
    ev.add_argument("--prompt", required=True, metavar="TEXT", help='the prompt text ("" for the empty template)')
    _lm_options(ev, api=True)
    _task_options(ev, "{prompt} {text} It was", "negative,positive")
    ev.add_argument("--split", default="auto", help="train, dev, test, all, or auto: a file whole, a named set's test")
    ev.add_argument("--limit", type=int, metavar="N", help="at most N examples")
    ev.add_argument("--base-url", metavar="URL", help="OpenAI-compatible endpoint for openai:MODEL")
    ev.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="env var with the API key")
    ev.add_argument("--cache", metavar="FILE", help="API response cache (default in ~/.cache/pez/api)")
    ev.add_argument("--scoring", default="auto", choices=["auto", "logprob", "parse"], help="API scoring (auto)")
    ev.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per API request (60)")
    ev.add_argument("--max-retries", type=int, default=6, metavar="N", help="retries per API request (6)")
    ev.add_argument("--out", metavar="FILE", help="write the result (with per-example predictions) as JSON")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")

    cmp_ = sub.add_parser("compare", help="several optimisers, same objective and budget -> table, plot, JSON")
    cmp_.add_argument("images", nargs="*", metavar="IMAGE", help="target image files (CLIP models)")
    cmp_.add_argument("--text", action="append", default=[], metavar="T", help="target text (repeatable)")
    cmp_.add_argument("--negative-text", action="append", default=[], metavar="T", help="text to move away from")
    cmp_.add_argument("--negative-image", action="append", default=[], metavar="F", help="image to move away from")
    cmp_.add_argument("--negative-weight", type=float, default=1.0, help="weight of each negative target (1)")
    cmp_.add_argument("--model", help=f"as for invert ({DEFAULT_CLIP}), or an LM with --data (smollm2)")
    cmp_.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    cmp_.add_argument("--data", metavar="D", help="an LM classification task instead of targets (movie-reviews, file)")
    cmp_.add_argument("--template", default="{prompt} {text} It was", help="LM task template")
    cmp_.add_argument("--labels", default="negative,positive", metavar="L", help="LM task verbaliser")
    cmp_.add_argument("--fluency", type=float, default=0.0, metavar="W", help="LM task: weight of the prompt's NLL")
    cmp_.add_argument("--dev-size", type=int, default=64, metavar="N", help="LM task: dev examples (64)")
    cmp_.add_argument("--test-size", type=int, default=500, metavar="N", help="LM task: held-out examples (500)")
    cmp_.add_argument("--peft", default="", metavar="M", help="LM task: also prompt-tuning,prefix-tuning,p-tuning")
    from pez.compare import add_compare_arguments

    add_compare_arguments(cmp_)

    sub.add_parser("models", help="list model specs (embedded models and open_clip NAME/TAG pairs)")
    return parser


def _lm_options(p: argparse.ArgumentParser, api: bool = False) -> None:
    more = ", or openai:MODEL with --base-url" if api else ""
    p.add_argument("--model", default="smollm2", help=f"smollm2, a transformers folder or hub name{more} (smollm2)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")


def _task_options(p: argparse.ArgumentParser, template: str, labels: str | None, data_default="movie-reviews") -> None:
    p.add_argument(
        "--data",
        default=data_default,
        metavar="D",
        help=f"movie-reviews, a JSONL/CSV file (text, label), or a Hugging Face dataset ({data_default})",
    )
    p.add_argument("--template", default=template, help=f"slots {{prompt}} and {{text}} (default {template!r})")
    p.add_argument(
        "--labels",
        default=labels,
        metavar="L",
        help=f"verbaliser: label words, or LABEL=WORD pairs, comma-separated ({labels})",
    )


def _search_options(p: argparse.ArgumentParser, methods) -> None:
    p.add_argument("--fluency", type=float, default=0.0, metavar="W", help="weight of the prompt's own NLL (0)")
    p.add_argument("--method", default="pez", choices=sorted(methods), help="optimiser (default pez)")
    p.add_argument("--out", metavar="FILE", help="write the report as JSON")
    p.add_argument("--checkpoint", metavar="FILE", help="save the optimiser state every --checkpoint-every steps")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(p, [cls.config_class for cls in methods.values()])


def _progress_bar(total: int, quiet: bool):
    if quiet:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="pez", unit="step", dynamic_ncols=True, file=sys.stderr)

    def callback(p):
        bar.update(p.step - bar.n)
        bar.set_postfix_str(f"best {p.best_score:.4f} | {p.best_text[:60]}")

    return bar, callback


def _quiet_libraries() -> None:
    """Keep the terminal for pez's own progress: no weight-loading bars from transformers."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _given_config(args: argparse.Namespace) -> dict:
    """The config fields given on the command line, checked against the chosen method."""
    from pez.optim import METHODS

    if args.resume and not args.checkpoint:
        raise PezError("--resume needs --checkpoint FILE")
    names = {f.name for f in dataclasses.fields(METHODS[args.method].config_class)}
    every = {f.name for cls in METHODS.values() for f in dataclasses.fields(cls.config_class)}
    given = {k: v for k, v in vars(args).items() if k in every}
    for k in given:
        if k not in names:
            raise PezError(f"--{k.replace('_', '-')} does not apply to method {args.method}")
    return given


def _invert(args: argparse.Namespace) -> int:
    import pez
    from pez.optim import METHODS

    method = METHODS[args.method]
    config = method.config_class(**_given_config(args))
    _quiet_libraries()
    obj = pez.make_objective(  # checks targets and image files before the (slow) model load
        args.model, args.images, args.text, args.negative_image, args.negative_text, args.negative_weight, args.device
    )
    optimizer = method(obj, config)  # validates the options against the model before any progress is shown
    bar, callback = _progress_bar(config.steps, args.quiet)
    try:
        (res,) = optimizer.run(callback=callback, checkpoint=args.checkpoint, resume=args.resume)
    finally:
        if bar is not None:
            bar.close()
    if args.out:
        res.save(args.out)
    print(res.text)
    note = f"; the optimised ids scored {res.internal_score:.4f} before re-tokenisation" if res.retokenized else ""
    print(f"{res.score_name} {res.score:.4f}{note}", file=sys.stderr)
    if res.interrupted:
        where = f"; saved to {args.out}" if args.out else ""
        print(f"interrupted after step {res.steps_done}: best prompt so far{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _run_search(job, args: argparse.Namespace, **kwargs) -> int:
    """Shared by discover and compress: progress bar, report, JSON, exit code."""
    from pez.lm import LM_DEFAULTS

    given = _given_config(args)
    _quiet_libraries()
    steps = given.get("steps", 3000)
    bar, callback = _progress_bar(steps, args.quiet)
    try:
        report = job(
            model=args.model,
            method=args.method,
            fluency=args.fluency,
            device=args.device,
            callback=callback,
            checkpoint=args.checkpoint,
            resume=args.resume,
            **kwargs,
            **{**{k: v for k, v in LM_DEFAULTS.items() if k not in given}, **given},
        )
    finally:
        if bar is not None:
            bar.close()
    if args.out:
        report.save(args.out)
    print(report.prompt)
    print(report.summary(), file=sys.stderr)
    if report.interrupted:
        where = f"; saved to {args.out}" if args.out else ""
        print(f"interrupted: best prompt so far{where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _discover(args: argparse.Namespace) -> int:
    from pez.lm import discover

    return _run_search(
        discover,
        args,
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


def _compress(args: argparse.Namespace) -> int:
    from pez.lm import compress

    if args.labels and not args.data:
        raise PezError("--labels needs --data with labelled examples to score the task")
    return _run_search(
        compress,
        args,
        instruction=args.instruction,
        data=args.data,
        template=args.template,
        labels=args.labels,
        n_inputs=args.inputs,
        test_size=args.test_size,
    )


def _evaluate(args: argparse.Namespace) -> int:
    from pez.lm import evaluate

    _quiet_libraries()
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
        api = {"timeout": args.timeout, "max_retries": args.max_retries}
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
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pez.compare import run_compare_cli

    _quiet_libraries()
    if args.data:
        if args.images or args.text:
            raise PezError("give either --data (an LM task) or targets (images, --text), not both")
        from pez.lm import compare_task

        peft = [m.strip() for m in args.peft.split(",") if m.strip()]

        def run(**kw):
            return compare_task(
                args.model or "smollm2",
                args.data,
                args.template,
                args.labels,
                peft=peft,
                fluency=args.fluency,
                dev_size=args.dev_size,
                test_size=args.test_size,
                device=args.device,
                **kw,
            )

        return run_compare_cli(args, run)
    if args.peft:
        raise PezError("--peft needs an LM task: give --data")
    import pez
    from pez.models import DEFAULT_CLIP

    obj = pez.make_objective(
        args.model or DEFAULT_CLIP,
        args.images,
        args.text,
        args.negative_image,
        args.negative_text,
        args.negative_weight,
        args.device,
    )
    return run_compare_cli(args, obj)


def _models(args: argparse.Namespace) -> int:
    from pez.models import EMBEDDED, list_models

    for spec in list_models():
        print(f"{spec}\t{EMBEDDED[spec]}" if spec in EMBEDDED else spec)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    # pez's own warnings are shown; other libraries' log lines would repeat what pez's one-line errors say
    logging.basicConfig(level=logging.CRITICAL, format="%(levelname)s: %(message)s")
    logging.getLogger("pez").setLevel(logging.WARNING)
    try:
        args = build_parser().parse_args(argv)
        commands = {
            "invert": _invert,
            "discover": _discover,
            "compress": _compress,
            "evaluate": _evaluate,
            "compare": _compare,
        }
        return {**commands, "models": _models}[args.command](args)
    except PezError as e:
        print(f"pez: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pez: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
