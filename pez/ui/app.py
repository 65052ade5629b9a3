"""The ``pez ui`` app: one Gradio page with a tab per job, each calling only the public functions of
:mod:`pez.jobs` (the same calls the command line makes), so a result from the page equals one from the CLI with
the same seed.

A tab is one function ``build_X_tab(ctx)`` that lays out its ``gr.Tab`` and wires its events; :data:`TABS` lists
them in page order, so adding a tab is writing that function and adding it here. Jobs go through one queue,
``--concurrency`` at a time; every size field is bounded on the server (:class:`pez.ui.live.Limits`, with a memory
estimate before a search); every run is saved under ``--runs``, and the Runs tab lists the running jobs to watch
and stop from any page; the server binds to 127.0.0.1, shares no link unless asked, caps uploads, and serves no
path but the uploads and ``--runs``. With ``--auth`` (one or more users) each user's runs are saved in a folder of
their own, and a user sees, stops and downloads only their own jobs and runs (:class:`RunsGuard` for the files).
"""

from __future__ import annotations

import os
import re
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

    Only the uploads (capped at ``options.max_upload_mb``) and the runs folder are served. ``auth``: a
    (user, password) pair or a list of them (Gradio's login page); each user then sees, stops and downloads only
    their own jobs and runs.
    """
    app = build_app(options)
    ctx: Context = app.pez_context
    middleware = []
    if auth:
        from starlette.middleware import Middleware

        middleware.append(Middleware(RunsGuard, root=ctx.store.root))
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


FILE_ROUTE = re.compile(r"^(?:/gradio_api)?/file=(.+)$")


class RunsGuard:
    """ASGI middleware of a server with ``--auth``: a file under ``--runs`` is served (Gradio's ``/file=`` route)
    only to the user whose folder holds it (:func:`pez.ui.runs.user_folder`); every other file goes on to Gradio's
    own checks. The user is the one Gradio's login cookie names (``App.tokens``, the table Gradio's own ``/user``
    route reads)."""

    def __init__(self, app, root: Path):
        self.app, self.root = app, Path(root)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            found = FILE_ROUTE.match(scope.get("path", ""))
            if found and not self.allowed(scope, found.group(1)):
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("This run belongs to another user.", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def allowed(self, scope, target: str) -> bool:
        paths = {Path(os.path.abspath(target)), Path(os.path.realpath(target))}
        inside = [p for p in paths if p.is_relative_to(self.root)]
        if not inside:
            return True  # not a run: Gradio decides
        user = self.user(scope)
        if user is None:
            return False
        own = self.root / user_folder(user)
        return all(p.is_relative_to(own) for p in inside)

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
