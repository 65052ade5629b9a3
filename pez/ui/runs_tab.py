"""Runs: the runs saved under ``--runs``, newest first, to read again and download after the page was closed."""

from __future__ import annotations

import gradio as gr

from pez.ui.common import Context
from pez.ui.runs import describe_run


def build_runs_tab(ctx: Context) -> None:
    with gr.Tab("Runs", id="runs", elem_id="runs-tab") as tab:
        gr.Markdown(f"Every run started from this page, saved in `{ctx.store.root}` as the CLI's JSON.")
        with gr.Row():
            choice = gr.Dropdown([], label="Saved run", scale=4)
            refresh = gr.Button("Refresh", scale=1)
        about = gr.Markdown()
        file = gr.File(label="Result file", interactive=False)

        def listing():
            names = [str(p.relative_to(ctx.store.root)) for p in ctx.store.recent()]
            return gr.update(choices=names, value=names[0] if names else None)

        def show(name):
            if not name:
                return "No run saved yet.", None
            path = (ctx.store.root / name).resolve()
            if path.parent != ctx.store.root and path.parent.parent != ctx.store.root or not path.is_file():
                return "That run is not in the runs folder.", None
            return describe_run(path), str(path)

        refresh.click(listing, None, choice, api_visibility="private", queue=False)
        tab.select(listing, None, choice, api_visibility="private", queue=False)
        choice.change(show, choice, [about, file], api_visibility="private", queue=False)
