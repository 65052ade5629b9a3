"""The ``pez ui`` app: one Gradio page with a tab per job, each calling only the public functions of
:mod:`pez.jobs` (the same calls the command line makes), so a result from the page equals one from the CLI with
the same seed.

A tab is one function ``build_X_tab(ctx)`` that lays out its ``gr.Tab`` and wires its events; :data:`TABS` lists
them in page order, so adding a tab is writing that function and adding it here. Jobs go through one queue,
``--concurrency`` at a time; every size field is bounded on the server (:class:`pez.ui.live.Limits`, with a memory
estimate before a search); every run is saved under ``--runs``, and the Runs tab lists the running jobs to watch
and stop from any page; the server binds to 127.0.0.1, shares no link unless asked, caps uploads, and serves no
path but the uploads and ``--runs``.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from pez.ui.common import OFFLINE_CLIP, Context, UIOptions
from pez.ui.compare_tab import build_compare_tab
from pez.ui.generate_tab import build_generate_tab
from pez.ui.image_tab import build_image_tab
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


def launch_app(
    options: UIOptions | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    auth: tuple[str, str] | None = None,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> gr.Blocks:
    """Build the page and serve it; returns the app (``app.local_url``; ``app.close()`` stops it).

    Only the uploads (capped at ``options.max_upload_mb``) and the runs folder are served.
    """
    app = build_app(options)
    ctx: Context = app.pez_context
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
    )
    return app
