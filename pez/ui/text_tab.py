"""Text -> short prompt: distil a sentence or a long prompt into a few tokens (``pez invert --text``); offline on
``minilm``, and on any CLIP text tower. API endpoint ``/distill``."""

from __future__ import annotations

import gradio as gr

from pez.errors import PezError
from pez.jobs.invert import INVERT_DEFAULTS
from pez.optim import METHODS
from pez.ui.common import (
    BUDGET_LABEL,
    OFFLINE_CLIP,
    Context,
    Number,
    Slider,
    bounded_text,
    model_note,
    one_line_errors,
    search_sizes,
    seconds_budget,
    session_key,
    user_of,
)
from pez.ui.estimate import invert_estimated
from pez.ui.panel import search_panel, steps_follow_readable, stop_search

TEXT_MODELS = ["minilm", OFFLINE_CLIP, "ViT-L-14/openai", "ViT-H-14/laion2b_s32b_b79k"]


def distill(ctx: Context, text, model, prompt_len, steps, seed, restarts=INVERT_DEFAULTS["restarts"], method="pez",
            callback=None, readable=False, job=None, user=None, budget_seconds=None):  # fmt: skip
    """Run ``pez.invert`` on one text target, as ``pez invert --text TEXT [--budget-seconds S]`` does; save it in
    ``user``'s runs; (result, path). With the page's ``job``, its time estimate is told before the search starts.
    ``budget_seconds``: the Seconds budget field (empty or 0: none)."""
    limits = ctx.limits
    text = bounded_text(text, "Text to distil", limits.text_chars)
    if not text:
        raise PezError("the text to distil is empty: type a sentence or a long prompt")
    search, prompt_len, seed, model = search_sizes(ctx, steps, restarts, prompt_len, seed, model, readable)
    budget = seconds_budget(budget_seconds, limits)
    readable = bool(readable)
    method = "pez" if readable else method or "pez"  # readable mode picks its own methods
    # readable mode: the steps are its refinement's (None: it sizes its own, pez.jobs.invert.READABLE); no restarts
    sized = search["steps"] if readable else None
    key = ("distill", model, method, readable, sized, prompt_len, search["restarts"], ctx.options.device)
    if readable and budget is not None:  # readable mode's pace is its whole run's time, which the budget bounds
        key += (budget.seconds,)
    res = invert_estimated(
        ctx, job, key, model, readable, search, callback, budget, texts=[text], method=method,
        device=ctx.options.device, prompt_len=prompt_len, seed=seed,
    )  # fmt: skip
    return res, ctx.store_for(user).save(res, "distill")


def build_text_tab(ctx: Context) -> None:
    default = ctx.options.model or "minilm"
    with gr.Tab("Text -> short prompt", id="text", elem_id="text-tab"):
        gr.Markdown("Distil a sentence or a long prompt into a few readable tokens with the same meaning.")
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text to distil", lines=4, placeholder="A man is riding a horse on the beach.")
                model = gr.Dropdown(TEXT_MODELS, value=default, label="Model", allow_custom_value=True)
                note = gr.Markdown(model_note(default))
                with gr.Row():
                    prompt_len = Slider(1, 32, value=8, step=1, label="Prompt length (tokens)")
                    steps = Number(300, label="Steps", precision=0)
                    seed = Number(0, label="Seed", precision=0)
                    budget = Number(0, label=BUDGET_LABEL, elem_id="text-budget")
                with gr.Accordion("More options", open=False):
                    restarts = Number(
                        INVERT_DEFAULTS["restarts"], label="Restarts (prompts searched together)", precision=0
                    )
                    method = gr.Dropdown(list(METHODS), value="pez", label="Method")
                readable = gr.Checkbox(False, label="Readable (reads as text: PEZ, then compose)")
                steps_follow_readable(readable, steps, 300)
                with gr.Row():
                    run = gr.Button("Distil", variant="primary", elem_id="text-run")
                    stop = gr.Button("Stop", variant="stop")
            with gr.Column():
                panel = search_panel("text", "honest cosine")
        api = gr.Button(visible=False)

        model.change(model_note, model, note, api_visibility="private", queue=False)

        @one_line_errors
        def run_page(text, model, prompt_len, steps, seed, budget, restarts, method, readable, request: gr.Request):
            values = (text, model, prompt_len, steps, seed, restarts, method)
            user = user_of(request)
            job = ctx.runner.start(
                session_key(request, "text"),
                lambda job: distill(
                    ctx, *values, job.callback, readable=readable, job=job, user=user, budget_seconds=budget
                ),
                "distill",
                user,
            )
            yield from panel.stream(job, "cosine")

        def stop_page(request: gr.Request):
            return stop_search(ctx, request, "text")

        @one_line_errors
        def api_distill(text: str, model: str, prompt_len: int, steps: int, seed: int, budget_seconds: float,
                        request: gr.Request):  # fmt: skip
            user = user_of(request)
            sizes = (text, model, prompt_len, steps, seed)
            res, path = ctx.runner.run(
                lambda job: distill(ctx, *sizes, user=user, budget_seconds=budget_seconds), "distill", user
            )
            return res.text, res.score, str(path)

        inputs = [text, model, prompt_len, steps, seed, budget]
        page = [*inputs, restarts, method, readable]
        run.click(run_page, page, panel.outputs, api_visibility="private", **ctx.job_events())
        stop.click(stop_page, None, panel.status, queue=False, api_visibility="private")
        api.click(api_distill, inputs, [panel.prompt, panel.score, panel.file], api_name="distill", **ctx.job_events())
