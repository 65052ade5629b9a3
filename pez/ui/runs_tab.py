"""Runs: the jobs running now (a reloaded page finds its job here, to watch and stop it) and the runs saved under
``--runs``, newest first, to read again and download after the page was closed. With ``pez ui --auth`` a user sees,
watches, stops and downloads only their own jobs and runs. API endpoint ``/runs`` (the caller's running jobs and
saved runs)."""

from __future__ import annotations

import gradio as gr

from pez.ui.common import Context, user_of
from pez.ui.runs import describe_run


def running_choices(ctx: Context, user: str | None = None) -> list[tuple[str, str]]:
    """(label, job id) of every job of ``user`` not yet finished, oldest first."""
    return [(job.describe(), job.id) for job in ctx.runner.running(user)]


def saved_runs(ctx: Context, user: str | None = None) -> list[str]:
    """The saved runs of ``user``, newest first, as names relative to their folder."""
    store = ctx.store_for(user)
    return [str(p.relative_to(store.root)) for p in store.recent()]


def watch_job(ctx: Context, job_id: str | None, user: str | None = None):
    """The line of ``user``'s job ``job_id`` as it runs, then how it ended (its result is in the saved runs)."""
    job = ctx.runner.find(job_id, user) if job_id else None
    if job is None:
        yield "No running job chosen (or it has ended: its result is under Saved runs)."
        return
    for _ in job.watch():
        yield job.describe()
    yield job.describe() + (" Its result is under Saved runs (Refresh)." if not job.error else "")


def stop_chosen(ctx: Context, job_id: str | None, user: str | None = None) -> str:
    """Stop ``user``'s job ``job_id``; the line the Runs tab shows."""
    if job_id and ctx.runner.stop(job_id, user):
        return f"Stopping {job_id} ...: it ends after the step under way and keeps what it found."
    return "No running job chosen (or it has ended)."


def build_runs_tab(ctx: Context) -> None:
    with gr.Tab("Runs", id="runs", elem_id="runs-tab") as tab:
        gr.Markdown("Jobs running now (a reloaded page finds its job here):")
        with gr.Row():
            job = gr.Dropdown([], label="Running job", scale=4, elem_id="runs-job")
            watch = gr.Button("Watch", scale=1, elem_id="runs-watch")
            stop = gr.Button("Stop", variant="stop", scale=1, elem_id="runs-stop")
        job_status = gr.Markdown(elem_id="runs-job-status")
        gr.Markdown(f"Every run started from this page, saved in `{ctx.store.root}` as the CLI's JSON.")
        with gr.Row():
            choice = gr.Dropdown([], label="Saved run", scale=4)
            refresh = gr.Button("Refresh", scale=1)
        about = gr.Markdown()
        file = gr.File(label="Result file", interactive=False)
        api = gr.Button(visible=False)
        api_running, api_saved = gr.JSON(visible=False), gr.JSON(visible=False)

        def listing(request: gr.Request):
            user = user_of(request)
            names, jobs = saved_runs(ctx, user), running_choices(ctx, user)
            return (
                gr.update(choices=names, value=names[0] if names else None),
                gr.update(choices=jobs, value=jobs[-1][1] if jobs else None),
            )

        def show(name, request: gr.Request):
            if not name:
                return "No run saved yet.", None
            root = ctx.store_for(user_of(request)).root
            path = (root / name).resolve()
            if path.parent != root and path.parent.parent != root or not path.is_file():
                return "That run is not in the runs folder.", None
            return describe_run(path), str(path)

        refresh.click(listing, None, [choice, job], api_visibility="private", queue=False)
        tab.select(listing, None, [choice, job], api_visibility="private", queue=False)
        choice.change(show, choice, [about, file], api_visibility="private", queue=False)

        def watch_page(job_id, request: gr.Request):
            yield from watch_job(ctx, job_id, user_of(request))

        def stop_page(job_id, request: gr.Request):
            return stop_chosen(ctx, job_id, user_of(request))

        def api_runs(request: gr.Request):
            """The caller's running jobs (one line each, starting with the kind and the job id) and saved runs."""
            user = user_of(request)
            return [label for label, _ in running_choices(ctx, user)], saved_runs(ctx, user)

        # watching takes no job slot: any number of pages may watch while the jobs run
        watch.click(watch_page, job, job_status, api_visibility="private", concurrency_limit=None)
        stop.click(stop_page, job, job_status, api_visibility="private", queue=False)
        api.click(api_runs, None, [api_running, api_saved], api_name="runs", queue=False)
