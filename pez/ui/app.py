"""The ``pez ui`` app: one Gradio page with a tab per job, each calling only the public functions of
:mod:`pez.jobs` (the same calls the command line makes), so a result from the page equals one from the CLI with
the same seed.

A tab is one function ``build_X_tab(ctx)`` that lays out its ``gr.Tab`` and wires its events; :data:`TABS` lists
them in page order, so adding a tab is writing that function and adding it here. Jobs go through one queue,
``--concurrency`` at a time; every size field is bounded on the server (:class:`pez.ui.live.Limits`, with a memory
estimate before a search); every run is saved under ``--runs``, and the Runs tab lists the running jobs to watch
and stop from any page; the server binds to 127.0.0.1, shares no link unless asked, caps uploads, and serves no
path but the uploads and ``--runs``. With ``--auth`` (one or more users) each user's runs are saved in a folder of
their own, and a user sees, stops and downloads only their own jobs and runs. Files go out through one check
(:class:`FileGuard`): a user gets a file only when it is theirs (their run, or a copy this server handed to them),
and Gradio's copies live in a temp folder of this process only (:func:`private_temp`), never the shared one.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr

from pez.ui.common import OFFLINE_CLIP, Context, UIOptions
from pez.ui.compare_tab import build_compare_tab
from pez.ui.generate_tab import build_generate_tab
from pez.ui.image_tab import build_image_tab
from pez.ui.runs import user_folder
from pez.ui.runs_tab import build_runs_tab
from pez.ui.task_tab import build_task_tab
from pez.ui.text_tab import build_text_tab

TABS: list[Callable[[Context], None]] = [
    build_image_tab,
    build_text_tab,
    build_task_tab,
    build_compare_tab,
    build_generate_tab,
    build_runs_tab,
]

HEADER = (
    "# pez: readable hard prompts\n"
    "Find a short prompt of real words that makes a model do what you want (PEZ, Wen et al. 2023). "
    "Without a network these models work: `minilm` (text), `smollm2` (language-model tasks), "
    f"`{OFFLINE_CLIP}` (a CLIP with random weights, for trying the page) and local weight files. "
)


def build_app(options: UIOptions | None = None) -> gr.Blocks:
    """The page: the header, then one tab per entry of :data:`TABS`; the queue set to ``options.concurrency``."""
    ctx = Context(options or UIOptions())
    ctx.store.prepare()
    private_temp()  # before any component: each one keeps the temp folder it was made with
    with gr.Blocks(title="pez", analytics_enabled=False) as app:
        gr.Markdown(HEADER + f"Every run is saved in `{ctx.store.root}`.")
        with gr.Tabs():
            for build in TABS:
                build(ctx)
    app.queue(default_concurrency_limit=ctx.options.concurrency)
    app.pez_context = ctx
    return app


Auth = tuple[str, str] | Sequence[tuple[str, str]] | None


def launch_app(
    options: UIOptions | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    auth: Auth = None,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> gr.Blocks:
    """Build the page and serve it; returns the app (``app.local_url``; ``app.close()`` stops it).

    Only the uploads (capped at ``options.max_upload_mb``) and the runs folder are served, each file only to its
    user (:class:`FileGuard`; ``app.pez_files`` is its :class:`HandedOut`). ``auth``: a (user, password) pair or a
    list of them (Gradio's login page); each user then sees, stops and downloads only their own jobs and runs.
    """
    from starlette.middleware import Middleware

    app = build_app(options)
    ctx: Context = app.pez_context
    folders = {private_temp(), os.environ.get("GRADIO_TEMP_DIR", "")} | {b.GRADIO_CACHE for b in app.blocks.values()}
    app.pez_files = HandedOut([f for f in folders if f])
    middleware = [Middleware(FileGuard, root=ctx.store.root, handed=app.pez_files, auth=bool(auth))]
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        allowed_paths=[str(ctx.store.root)],
        max_file_size=f"{ctx.options.max_upload_mb}mb",
        prevent_thread_lock=prevent_thread_lock,
        show_error=False,
        ssr_mode=False,
        quiet=quiet,
        app_kwargs={"middleware": middleware},
    )
    return app


# Gradio's routes that serve a file by its path: ``/file=PATH`` and the older ``/file/PATH``
FILE_ROUTE = re.compile(r"^(?:/gradio_api)?/file(?:=|/)(.+)$")
SCANNED = (b"application/json", b"text/event-stream")  # the responses and requests that carry file paths


@functools.cache
def private_temp() -> Path:
    """This process's folder for Gradio's copies (uploads, the result files the page hands out): made once, in
    ``$GRADIO_TEMP_DIR`` or the system's temp folder, readable by this OS user only, removed when the process ends.
    ``GRADIO_TEMP_DIR`` is pointed at it before any component is made (Gradio reads it where it copies and checks
    uploads), so no copy lands in the temp folder other servers share; the folder of a server that ended without its
    exit handlers (SIGTERM) is removed by the next server that starts."""
    parent = os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()
    os.makedirs(parent, exist_ok=True)
    for left in Path(parent).glob("pez-ui-*-*"):  # the folders of servers that ended without their exit handlers (a
        pid = left.name.split("-")[2]  # SIGTERM, a kill): this user's, whose process is gone
        if pid.isdigit() and left.is_dir() and left.stat().st_uid == os.getuid() and not alive(int(pid)):
            shutil.rmtree(left, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"pez-ui-{os.getpid()}-", dir=parent)).resolve()  # mode 0700
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HandedOut:
    """Which files of Gradio's temp folders this server handed to which user: a file path that went out in a
    response to a user (an upload's answer, a result in the event stream) may come back from that user only, to
    be served or read as an input. Without ``--auth`` every client is the user None."""

    def __init__(self, folders: Sequence[str | os.PathLike]):
        self.folders = sorted({g(f) for f in folders for g in (os.path.abspath, os.path.realpath)})
        prefixes = b"|".join(re.escape(json.dumps(f + os.sep)[1:-1].encode()) for f in self.folders)
        self.pattern = re.compile(rb'"((?:' + prefixes + rb')(?:[^"\\]|\\.)*)"')  # a JSON string naming a file there
        self._users: dict[str, set[str | None]] = {}

    def paths(self, body: bytes) -> set[str]:
        """The paths under the temp folders that a JSON or event-stream body names."""
        found = set()
        for m in self.pattern.finditer(body):
            try:
                found.add(os.path.abspath(json.loads(b'"' + m.group(1) + b'"')))
            except ValueError:
                continue
        return found

    def named(self, body: bytes) -> set[str]:
        """The files of the temp folders a request's JSON body names, however written (``/tmp/./x``, ``../``, a
        symlink): every string that leads into a temp folder. Empty for a body that is not JSON."""
        try:
            data = json.loads(body)
        except ValueError:
            return set()
        found, stack = set(), [data]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, str) and os.sep in item and "\0" not in item:
                path = os.path.abspath(item)
                if self.inside(path) or self.inside(os.path.realpath(item)):
                    found.add(path)
        return found

    def record(self, body: bytes, user: str | None) -> None:
        for path in self.paths(body):
            self._users.setdefault(path, set()).add(user)

    def inside(self, path: str) -> bool:
        """Whether ``path`` (absolute) lies in one of the temp folders."""
        return any(path == f or path.startswith(f + os.sep) for f in self.folders)

    def allows(self, path: str, user: str | None) -> bool:
        return user in self._users.get(os.path.abspath(path), ())


class FileGuard:
    """ASGI middleware of every ``pez ui`` server: a file goes to a user only when it is theirs.

    - A file under ``--runs`` (Gradio's ``/file=`` and ``/file/`` routes): with ``--auth``, only to the user whose
      folder holds it (:func:`pez.ui.runs.user_folder`); without, Gradio's own checks decide.
    - Any other file: only when this server handed its path to the user who asks (:class:`HandedOut`, filled from
      the JSON and event-stream answers each user receives): never another user's result or upload, never what
      another server left in a temp folder.
    - A request whose JSON names a file of the temp folders that was not handed to its user (an API call that
      passes another user's upload as its own) is refused before Gradio reads it.

    The user is the one Gradio's login cookie names (``App.tokens``, the table Gradio's own ``/user`` route reads)."""

    def __init__(self, app, root: Path, handed: HandedOut, auth: bool):
        self.app, self.root, self.handed, self.auth = app, Path(root), handed, auth

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        root_path = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]  # what Starlette's router matches
        user = self.user(scope)
        found = FILE_ROUTE.match(path)
        if found:
            refusal = self.refusal(found.group(1), user)
            if refusal:
                return await self.refuse(refusal, scope, receive, send)
            return await self.app(scope, receive, send)
        if scope.get("method") in ("POST", "PUT", "PATCH") and not self.form(scope["headers"]):
            body = await read_body(receive)  # JSON, or read as JSON by FastAPI when it names no content type
            if any(not self.handed.allows(p, user) for p in self.handed.named(body)):
                return await self.refuse("A file named in this request was not given to you.", scope, receive, send)
            receive = replay(body, receive)

        scanning = False

        async def watch(message):
            nonlocal scanning
            if message["type"] == "http.response.start":
                scanning = self.scanned(message.get("headers", []))
            elif message["type"] == "http.response.body" and scanning:
                self.handed.record(message.get("body", b""), user)
            await send(message)

        await self.app(scope, receive, watch)

    @staticmethod
    def kind(headers) -> bytes:
        return next((v for k, v in headers if k.lower() == b"content-type"), b"").lower()

    def scanned(self, headers) -> bool:
        """A response that may name files: JSON or an event stream."""
        return self.kind(headers).startswith(SCANNED)

    def form(self, headers) -> bool:
        """A request body that is a form (an upload, the login), not JSON."""
        return self.kind(headers).startswith((b"multipart/", b"application/x-www-form-urlencoded"))

    def refusal(self, target: str, user: str | None) -> str | None:
        """Why ``target`` (a path as the route reads it) is not served to ``user``; None when it may be."""
        paths = {Path(os.path.abspath(target)), Path(os.path.realpath(target))}
        runs = [p for p in paths if p.is_relative_to(self.root)]
        if runs:
            if not self.auth:
                return None  # one user: Gradio's allowed_paths decide
            own = self.root / user_folder(user) if user is not None else None
            ok = own is not None and all(p.is_relative_to(own) for p in runs)
            return None if ok else "This run belongs to another user."
        if self.handed.allows(target, user):
            return None
        return "This file was not given to you by this server."

    @staticmethod
    async def refuse(line: str, scope, receive, send):
        from starlette.responses import PlainTextResponse

        await PlainTextResponse(line, status_code=403)(scope, receive, send)

    @staticmethod
    def user(scope) -> str | None:
        from starlette.requests import Request

        server = scope.get("app")
        tokens, cookie = getattr(server, "tokens", None), getattr(server, "cookie_id", None)
        if not tokens or cookie is None:
            return None
        cookies = Request(scope).cookies
        token = cookies.get(f"access-token-{cookie}") or cookies.get(f"access-token-unsecure-{cookie}")
        return tokens.get(token)


async def read_body(receive) -> bytes:
    """The whole body of a request (ASGI ``http.request`` messages)."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive):
    """A ``receive`` that gives the body already read once, then the client's own messages (a disconnect)."""
    sent = False

    async def again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
