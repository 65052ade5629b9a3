"""Image -> prompt: one or several images (several give a style prompt), optional negative images and texts, any
CLIP model spec (``pez invert IMAGE ...``). Without weights in the local cache the tab says how to get them before
anything is uploaded. API endpoint ``/invert``."""

from __future__ import annotations

import gradio as gr

from pez.errors import PezError
from pez.jobs.invert import INVERT_DEFAULTS
from pez.models import DEFAULT_CLIP
from pez.optim import METHODS
from pez.ui.common import (
    BUDGET_LABEL,
    OFFLINE_CLIP,
    Context,
    Number,
    Slider,
    file_paths,
    lines,
    model_note,
    one_line_errors,
    search_sizes,
    seconds_budget,
    session_key,
    user_of,
)
from pez.ui.estimate import invert_estimated
from pez.ui.panel import search_panel, steps_follow_readable, stop_search

IMAGE_MODELS = [DEFAULT_CLIP, "ViT-L-14/openai", "sdxl", "ViT-B-32/laion2b_s34b_b79k", OFFLINE_CLIP]
CPU_STEPS = 300  # the page's default on a CPU, where the paper's 3000 steps of ViT-H-14 take hours


def image_defaults(ctx: Context) -> tuple[str, int]:
    """The tab's default model and steps, sized for the machine: ``--model``, else on a GPU the paper's ViT-H-14
    and 3000 steps; on a CPU the first CLIP of the list whose weights are already here (else the offline random
    one) and :data:`CPU_STEPS` steps."""
    from pez.models import resolve_device

    if resolve_device(ctx.options.device).type == "cuda":
        return ctx.options.model or DEFAULT_CLIP, 3000
    if ctx.options.model:
        return ctx.options.model, CPU_STEPS
    here = [m for m in IMAGE_MODELS if m != "sdxl" and "works offline" in model_note(m)]
    return (here or [OFFLINE_CLIP])[0], CPU_STEPS


def invert_images(
    ctx: Context,
    images,
    texts,
    negative_images,
    negative_texts,
    model,
    prompt_len,
    steps,
    restarts,
    method,
    seed,
    callback=None,
    readable=False,
    job=None,
    user=None,
    budget_seconds=None,
):
    """Run ``pez.invert`` as ``pez invert IMAGE ... [--text T] [--negative-image F] [--negative-text T]
    [--budget-seconds S]`` does; save it in ``user``'s runs; (result, path). With the page's ``job``, its time
    estimate is told before the search starts. ``budget_seconds``: the Seconds budget field (empty or 0: none)."""
    images = file_paths(images, "images", ctx.options)
    negative_images = file_paths(negative_images, "negative images", ctx.options)
    if not images and not lines(texts):
        raise PezError("no target images: upload one or more images (or give target texts)")
    search, prompt_len, seed, model = search_sizes(ctx, steps, restarts, prompt_len, seed, model, readable)
    budget = seconds_budget(budget_seconds, ctx.limits)
    readable = bool(readable)
    method = "pez" if readable else method or "pez"  # readable mode picks its own methods
    sized = search["steps"] if readable else None  # readable mode: its refinement's steps (None: it sizes its own)
    key = ("invert", model, method, readable, sized, prompt_len, search["restarts"], len(images), ctx.options.device)
    if readable and budget is not None:  # readable mode's pace is its whole run's time, which the budget bounds
        key += (budget.seconds,)
    res = invert_estimated(
        ctx, job, key, model, readable, search, callback, budget, images=images, texts=lines(texts),
        negative_images=negative_images, negative_texts=lines(negative_texts), method=method,
        device=ctx.options.device, prompt_len=prompt_len, seed=seed,
    )  # fmt: skip
    return res, ctx.store_for(user).save(res, "invert")


def build_image_tab(ctx: Context) -> None:
    default, default_steps = image_defaults(ctx)
    with gr.Tab("Image -> prompt", id="image", elem_id="image-tab"):
        gr.Markdown(
            "A prompt whose CLIP text features match the images: paste it into a text-to-image model. "
            "Several images give a style prompt; negative images and texts push away from content you do not want."
        )
        with gr.Row():
            with gr.Column():
                model = gr.Dropdown(IMAGE_MODELS, value=default, label="CLIP model", allow_custom_value=True)
                note = gr.Markdown(model_note(default))
                images = gr.File(label="Target images", file_count="multiple", file_types=["image"])
                shown = gr.Gallery(label="The target images", columns=4, height=200, interactive=False)
                with gr.Accordion("Negative targets and target texts", open=False):
                    negative_images = gr.File(label="Negative images", file_count="multiple", file_types=["image"])
                    negative_texts = gr.Textbox(label="Negative texts (one per line)", lines=2)
                    texts = gr.Textbox(label="Target texts too (one per line)", lines=2)
                with gr.Row():
                    prompt_len = Slider(1, 32, value=16, step=1, label="Prompt length (tokens)")
                    steps = Number(default_steps, label="Steps", precision=0)
                    budget = Number(0, label=BUDGET_LABEL, elem_id="image-budget")
                with gr.Row():
                    restarts = Number(INVERT_DEFAULTS["restarts"], label="Restarts", precision=0)
                    method = gr.Dropdown(list(METHODS), value="pez", label="Method")
                    seed = Number(0, label="Seed", precision=0)
                readable = gr.Checkbox(False, label="Readable (reads as text: PEZ, then compose)")
                steps_follow_readable(readable, steps, default_steps)
                with gr.Row():
                    run = gr.Button("Find a prompt", variant="primary")
                    stop = gr.Button("Stop", variant="stop")
            with gr.Column():
                panel = search_panel("image", "honest cosine")
        api = gr.Button(visible=False)

        model.change(model_note, model, note, api_visibility="private", queue=False)

        def pictures(files):
            return [str(f) for f in (files or [])]

        images.change(pictures, images, shown, api_visibility="private", queue=False)
        inputs = [images, texts, negative_images, negative_texts, model, prompt_len, steps, restarts, method, seed]
        inputs += [budget]

        @one_line_errors
        def run_page(images, texts, negative_images, negative_texts, model, prompt_len, steps, restarts, method, seed,
                     budget, readable, request: gr.Request):  # fmt: skip
            values = (images, texts, negative_images, negative_texts, model, prompt_len, steps, restarts, method, seed)
            user = user_of(request)
            job = ctx.runner.start(
                session_key(request, "image"),
                lambda job: invert_images(
                    ctx, *values, callback=job.callback, readable=readable, job=job, user=user, budget_seconds=budget
                ),
                "invert",
                user,
            )
            yield from panel.stream(job, "cosine")

        def stop_page(request: gr.Request):
            return stop_search(ctx, request, "image")

        @one_line_errors
        def api_invert(
            images: list[str],
            texts: str,
            negative_images: list[str],
            negative_texts: str,
            model: str,
            prompt_len: int,
            steps: int,
            restarts: int,
            method: str,
            seed: int,
            budget_seconds: float,
            request: gr.Request,
        ):
            values = (images, texts, negative_images, negative_texts, model, prompt_len, steps, restarts, method, seed)
            user = user_of(request)
            budget = budget_seconds
            res, path = ctx.runner.run(lambda job: invert_images(ctx, *values, user=user, budget_seconds=budget),
                                       "invert", user)  # fmt: skip
            return res.text, res.score, str(path)

        run.click(run_page, [*inputs, readable], panel.outputs, api_visibility="private", **ctx.job_events())
        stop.click(stop_page, None, panel.status, queue=False, api_visibility="private")
        api.click(api_invert, inputs, [panel.prompt, panel.score, panel.file], api_name="invert", **ctx.job_events())
