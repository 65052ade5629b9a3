"""Compare: several methods on one objective under one budget (``pez compare``): text / image targets on an
embedding model, or an LM classification task. Shows the table and the best-score-against-time plot that
:meth:`pez.ComparisonResult.save` writes, and offers its files. API endpoint ``/compare``.

Stop takes effect when the run under way ends (a comparison reports finished runs, not steps); the finished runs
are kept and saved."""

from __future__ import annotations

import gradio as gr

from pez.errors import PezError
from pez.optim import METHODS
from pez.text.templates import DEFAULT_TEMPLATE
from pez.ui.common import (
    Context,
    Number,
    Slider,
    bounded,
    file_paths,
    lines,
    model_spec,
    one_line_errors,
    real_number,
    session_key,
    user_of,
)
from pez.ui.panel import stop_job
from pez.ui.task_tab import DATA_FILE_TYPES
from pez.ui.text_tab import TEXT_MODELS

TARGETS, TASK = "Targets (texts, images)", "LM task (data)"
UNITS = ["steps", "seconds", "passes"]


def compare_methods(
    ctx: Context,
    texts,
    images,
    model,
    data,
    data_file,
    template,
    labels,
    methods,
    seeds,
    budget,
    budget_unit,
    prompt_len,
    job=None,
    user=None,
):
    """Run ``pez.compare`` (targets) or ``pez.compare_task`` (``data``) as ``pez compare`` does; save the folder in
    ``user``'s runs.

    Returns:
        (the :class:`pez.ComparisonResult`, its files by kind: md, csv, json, png).
    """
    import pez

    methods = [m for m in (methods or []) if m]
    if not methods:
        raise PezError("no methods chosen: tick at least one")
    if budget_unit not in UNITS:
        raise PezError(f"unknown budget unit {budget_unit!r}: use {', '.join(UNITS)}")
    limits = ctx.limits
    if budget_unit == "seconds":
        seconds = real_number(budget, "Budget per run (seconds)", 0.0, strict=True)
        if seconds > limits.budget_seconds:
            raise PezError(f"Budget per run (seconds) must be at most {limits.budget_seconds:g}, got {seconds:g}")
        budgets = {"budget_seconds": seconds}
    else:
        high = limits.steps if budget_unit == "steps" else limits.budget_passes
        budgets = {f"budget_{budget_unit}": bounded(budget, f"Budget per run ({budget_unit})", 1, high)}
    config = {"prompt_len": bounded(prompt_len, "Prompt length", 1, limits.prompt_len)}
    seeds = bounded(seeds, "Seeds", 1, limits.seeds)
    options = {"methods": methods, "seeds": seeds, "config": config, **budgets}
    uploaded = file_paths(data_file, "data files", ctx.options)
    spec = uploaded[0] if uploaded else (data or "").strip()
    images = file_paths(images, "images", ctx.options)
    if spec and (images or lines(texts)):
        raise PezError("give either data (an LM task) or targets (texts, images), not both")
    runs = []

    def finished(run) -> None:
        runs.append(run)
        if job is not None:
            job.note(run)
            if job.stopping and len(runs) < len(methods) * seeds:
                raise KeyboardInterrupt  # the comparison ends here, with the runs so far

    store = ctx.store_for(user)
    folder = store.new_path("compare", "")
    try:
        if spec:
            result = pez.compare_task(
                model_spec(model),
                spec,
                template or DEFAULT_TEMPLATE,
                labels,
                device=ctx.options.device,
                callback=finished,
                **options,
            )
        else:
            obj = pez.make_objective(model_spec(model), images, lines(texts), device=ctx.options.device)
            result = pez.compare(obj, callback=finished, **options)
    except KeyboardInterrupt:
        if not runs:
            raise
        budget = {k: budgets.get(f"budget_{k}") for k in UNITS}
        result = pez.ComparisonResult(runs, budget, config, {})
    return result, store.save_comparison(result, folder)


def run_lines(runs) -> list[str]:
    """One markdown line per finished run: method, seed, score, steps, time and the prompt(s) it found."""
    return [
        f"- {r.method} seed {r.seed}: {r.score:.4f} in {r.timings['steps_run']} steps, {r.timings['loop_s']:.1f} s: "
        + " / ".join(f"`{x.text.replace('`', chr(39))}`" for x in r.results)
        for r in runs
    ]


def runs_so_far(job, total: int) -> str:
    """One line per finished run, and how many are left."""
    done = run_lines(job.notes)
    if not job.running and not job.notes:
        return "Waiting for a running job to finish ..."
    left = f"Run {len(done) + 1} of {total} under way." if len(done) < total else "Saving ..."
    stop = " Stopping when it ends ..." if job.stopping else ""
    return "\n".join([*done, "", left + stop])


def build_compare_tab(ctx: Context) -> None:
    default = ctx.options.model or "minilm"
    with gr.Tab("Compare", id="compare", elem_id="compare-tab"):
        gr.Markdown(
            "Every method with every seed on the same objective, the same prompt length and the same budget: "
            "steps, loop seconds, or forward-equivalent passes (forward + 2 x backward sequences)."
        )
        with gr.Row():
            with gr.Column():
                kind = gr.Radio([TARGETS, TASK], value=TARGETS, label="Objective")
                model = gr.Dropdown([*TEXT_MODELS, "smollm2"], value=default, label="Model", allow_custom_value=True)
                with gr.Group(visible=True) as target_group:
                    texts = gr.Textbox(label="Target texts (one per line)", lines=3)
                    images = gr.File(label="Target images (CLIP models)", file_count="multiple", file_types=["image"])
                with gr.Group(visible=False) as task_group:
                    data = gr.Dropdown(["movie-reviews"], value="movie-reviews", label="Data", allow_custom_value=True)
                    data_file = gr.File(label="or a data file (text, label), used instead", file_types=DATA_FILE_TYPES)
                    template = gr.Textbox(DEFAULT_TEMPLATE, label="Template")
                    labels = gr.Textbox("negative,positive", label="Labels")
                methods = gr.CheckboxGroup(list(METHODS), value=["pez", "autoprompt", "random"], label="Methods")
                with gr.Row():
                    seeds = Number(3, label="Seeds", precision=0)
                    budget = Number(100, label="Budget per run")
                    unit = gr.Dropdown(UNITS, value="steps", label="Budget unit")
                    prompt_len = Slider(1, 32, value=8, step=1, label="Prompt length")
                with gr.Row():
                    run = gr.Button("Compare", variant="primary")
                    stop = gr.Button("Stop", variant="stop")
            with gr.Column():
                status = gr.Markdown()
                gr.Markdown("Best honest score against loop seconds (`plot.png`):")
                plot = gr.Image(type="filepath", interactive=False, show_label=False, height=440)
        table = gr.Markdown()
        files = gr.File(label="results.md, .csv, .json, plot.png", file_count="multiple", interactive=False)
        api = gr.Button(visible=False)

        def switch(kind):
            task = kind == TASK
            model_value = "smollm2" if task else default
            return gr.update(visible=not task), gr.update(visible=task), model_value

        kind.change(switch, kind, [target_group, task_group, model], api_visibility="private", queue=False)
        inputs = [texts, images, model, data, data_file, template, labels, methods, seeds, budget, unit, prompt_len]

        def shown(paths) -> tuple:
            md = paths["md"].read_text(encoding="utf-8")
            return md, str(paths["png"]), [str(paths[k]) for k in ("md", "csv", "json", "png")]

        @one_line_errors
        def run_page(kind, texts, images, model, data, data_file, template, labels, methods, seeds, budget, unit,
                     prompt_len, request: gr.Request):  # fmt: skip
            if kind == TASK:
                texts, images = "", None
            else:
                data, data_file = "", None
            values = (texts, images, model, data, data_file, template, labels, methods, seeds, budget, unit)
            total = len(methods or []) * bounded(seeds, "Seeds", 1, ctx.limits.seeds)
            user = user_of(request)
            job = ctx.runner.start(
                session_key(request, "compare"),
                lambda job: compare_methods(ctx, *values, prompt_len, job=job, user=user),
                "compare",
                user,
            )
            for _ in job.watch():
                if not job.finished.is_set():
                    yield runs_so_far(job, total), gr.update(), gr.update(), gr.update()
            if job.error:
                raise PezError(job.error)
            result, paths = job.result
            stopped = result.interrupted or len(result.runs) < total
            note = " Stopped: the runs that finished are kept." if stopped else ""
            saved = f"Saved in the runs folder as `{paths['md'].parent.name}`."
            yield "\n".join([*run_lines(result.runs), "", f"{len(result.runs)} runs. {saved}{note}"]), *shown(paths)

        def stop_page(request: gr.Request):
            return stop_job(ctx, request, "compare", "it ends with the run under way; finished runs are kept.")

        @one_line_errors
        def api_compare(
            texts: str,
            images: list[str],
            model: str,
            data: str,
            data_file: str | None,
            template: str,
            labels: str,
            methods: list[str],
            seeds: int,
            budget: float,
            budget_unit: str,
            prompt_len: int,
            request: gr.Request,
        ):
            values = (texts, images, model, data, data_file, template, labels, methods, seeds, budget, budget_unit)
            user = user_of(request)
            _, paths = ctx.runner.run(
                lambda job: compare_methods(ctx, *values, prompt_len, job=job, user=user), "compare", user
            )
            return shown(paths)

        run.click(run_page, [kind, *inputs], [status, table, plot, files], api_visibility="private", **ctx.job_events())
        stop.click(stop_page, None, status, queue=False, api_visibility="private")
        api.click(api_compare, inputs, [table, plot, files], api_name="compare", **ctx.job_events())
