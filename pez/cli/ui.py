"""``pez ui``: the web page (:mod:`pez.ui`), one tab per job, served on 127.0.0.1 by default."""

from __future__ import annotations

import argparse

from pez.errors import PezError


def add_parser(sub) -> None:
    p = sub.add_parser("ui", help="a web page with one tab per job (Gradio), on 127.0.0.1 by default")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, metavar="N", help="port (default: 7860, or the next free one)")
    p.add_argument("--model", metavar="SPEC", help="default model of the image, text and compare tabs")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N for every job (default auto)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--auth", metavar="USER:PASS", help="ask for this user name and password")
    p.add_argument("--runs", default="pez-runs", metavar="DIR", help="save every run here (default ./pez-runs)")
    p.add_argument("--concurrency", type=int, default=1, metavar="N", help="jobs run at once (default 1)")
    p.add_argument("--max-upload-mb", type=int, default=20, metavar="MB", help="largest upload (default 20)")
    p.add_argument("--max-files", type=int, default=16, metavar="N", help="most files in one upload field (16)")
    p.add_argument("--pipeline", metavar="P", help="diffusers pipeline (hub name or folder) for 'check by generating'")
    p.add_argument("--reference-model", metavar="M", help="open_clip spec that scores generations there")
    p.set_defaults(run=run)


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``USER:PASS`` -> (user, password); a one-line error when either part is missing."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise PezError("--auth expects USER:PASS, both non-empty")
    return user, password


def run(args: argparse.Namespace) -> int:
    from pez.cli.options import quiet_libraries
    from pez.models import resolve_device

    auth = parse_auth(args.auth)
    if args.port is not None and not 1 <= args.port <= 65535:
        raise PezError(f"--port must be between 1 and 65535, got {args.port}")
    for name in ("concurrency", "max_upload_mb", "max_files"):
        if getattr(args, name) < 1:
            raise PezError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    resolve_device(args.device)
    quiet_libraries()
    from pez.ui import UIOptions, launch_app

    options = UIOptions(
        args.model,
        args.device,
        args.runs,
        args.concurrency,
        args.max_upload_mb,
        args.max_files,
        args.pipeline,
        args.reference_model,
    )
    launch_app(options, host=args.host, port=args.port, share=args.share, auth=auth)
    return 0
