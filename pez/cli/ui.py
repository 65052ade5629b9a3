"""``pez ui``: the web page (:mod:`pez.ui`), one tab per job, served on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket

from pez.errors import PezError


def add_parser(sub) -> None:
    p = sub.add_parser("ui", help="a web page with one tab per job (Gradio), on 127.0.0.1 by default")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only); any other needs --auth or --no-auth",
    )
    p.add_argument("--port", type=int, metavar="N", help="port (default: 7860, or the next free one)")
    p.add_argument("--model", metavar="SPEC", help="default model of the image, text and compare tabs")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N for every job (default auto)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument(
        "--auth",
        action="append",
        metavar="USER:PASS",
        help="ask for a user name and password; repeat for several users, who each see only their own runs",
    )
    p.add_argument("--no-auth", action="store_true", help="serve beyond this machine without a password (on purpose)")
    p.add_argument("--runs", default="pez-runs", metavar="DIR", help="save every run here (default ./pez-runs)")
    p.add_argument("--concurrency", type=int, default=1, metavar="N", help="jobs run at once (default 1)")
    p.add_argument("--max-upload-mb", type=int, default=20, metavar="MB", help="largest upload (default 20)")
    p.add_argument("--max-files", type=int, default=16, metavar="N", help="most files in one upload field (16)")
    p.add_argument("--pipeline", metavar="P", help="diffusers pipeline (hub name or folder) for 'check by generating'")
    p.add_argument("--reference-model", metavar="M", help="open_clip spec that scores generations there")
    p.set_defaults(run=run)


def parse_auth(texts: list[str] | str | None) -> list[tuple[str, str]] | None:
    """``USER:PASS`` (one or several) -> [(user, password), ...]; a one-line error when a part is missing or a user
    is given twice."""
    if texts is None:
        return None
    pairs = []
    for text in [texts] if isinstance(texts, str) else texts:
        user, sep, password = text.partition(":")
        if not sep or not user or not password:
            named = f" (the one for {user!r})" if user and sep else ""  # never the password in a message
            raise PezError(f"--auth expects USER:PASS, both non-empty{named}")
        if user in dict(pairs):
            raise PezError(f"--auth: user {user!r} given twice (one password per user)")
        pairs.append((user, password))
    return pairs


def check_host(host: str, auth, no_auth: bool) -> None:
    """``--host`` must resolve; one that is not loopback needs ``--auth`` (or ``--no-auth``, said on purpose)."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        raise PezError(f"--host {host}: no such address on this machine's network (try 127.0.0.1 or 0.0.0.0)") from None
    loopback = all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found)
    if auth is not None and no_auth:
        raise PezError("--auth and --no-auth contradict each other: give one")
    if not loopback and auth is None and not no_auth:
        raise PezError(
            f"--host {host} serves the page beyond this machine: add --auth USER:PASS (or --no-auth, on purpose)"
        )


def check_pipeline(spec: str) -> None:
    """``--pipeline``: a local folder must hold a diffusers pipeline; a hub name must look like one."""
    folder = os.path.expanduser(spec)
    if os.path.isdir(folder):
        if not os.path.isfile(os.path.join(folder, "model_index.json")):
            raise PezError(f"--pipeline {spec}: the folder has no model_index.json (a pipeline's save_pretrained)")
        return
    if spec.startswith((os.sep, ".", "~")) or os.path.exists(folder):
        raise PezError(f"--pipeline {spec}: no such folder (give a diffusers folder or a hub name such as OWNER/NAME)")
    if spec.count("/") != 1 or not all(spec.split("/")):
        raise PezError(f"--pipeline {spec}: not a folder here nor a hub name of the form OWNER/NAME")


def run(args: argparse.Namespace) -> int:
    from pez.cli.options import quiet_libraries
    from pez.models import resolve_device

    auth = parse_auth(args.auth)
    check_host(args.host, auth, args.no_auth)
    if args.port is not None and not 1 <= args.port <= 65535:
        raise PezError(f"--port must be between 1 and 65535, got {args.port}")
    for name in ("concurrency", "max_upload_mb", "max_files"):
        if getattr(args, name) < 1:
            raise PezError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    resolve_device(args.device)
    if args.pipeline is not None:
        check_pipeline(args.pipeline)
    quiet_libraries()
    from pez.ui import UIOptions, launch_app
    from pez.ui.common import model_problem

    for flag, spec in (("--model", args.model), ("--reference-model", args.reference_model)):
        problem = model_problem(spec) if spec is not None else None
        if problem:
            raise PezError(f"{flag} {problem}")

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
