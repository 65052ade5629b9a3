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
    OFFLINE_CLIP,
    Context,
    file_paths,
    lines,
    model_note,
    model_spec,
    one_line_errors,
    search_panel,
    session_key,
    stop_search,
)
from pez.ui.common import whole_number as number

IMAGE_MODELS = [DEFAULT_CLIP, "ViT-L-14/openai", "sdxl", "ViT-B-32/laion2b_s34b_b79k", OFFLINE_CLIP]


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
):
    """Run ``pez.invert`` as ``pez invert IMAGE ... [--text T] [--negative-image F] [--negative-text T]`` does."""
    import pez

    images = file_paths(images, "images", ctx.options)
    negative_images = file_paths(negative_images, "negative images", ctx.options)
    if not images and not lines(texts):
        raise PezError("no target images: upload one or more images (or give target texts)")
    res = pez.invert(
        images,
        lines(texts),
        negative_images,
        lines(negative_texts),
        model=model_spec(model),
        method=method or "pez",
        device=ctx.options.device,
        callback=callback,
        readable=bool(readable),
        prompt_len=number(prompt_len, "prompt length", 1),
        seed=number(seed, "seed"),
        **({} if readable else {"steps": number(steps, "steps", 1), "restarts": number(restarts, "restarts", 1)}),
    )
    return res, ctx.store.save(res, "invert")


def build_image_tab(ctx: Context) -> None:
    default = ctx.options.model or DEFAULT_CLIP
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
                with gr.Accordion("Negative targets and target texts", open=False):
                    negative_images = gr.File(label="Negative images", file_count="multiple", file_types=["image"])
                    negative_texts = gr.Textbox(label="Negative texts (one per line)", lines=2)
                    texts = gr.Textbox(label="Target texts too (one per line)", lines=2)
                with gr.Row():
                    prompt_len = gr.Slider(1, 32, value=16, step=1, label="Prompt length (tokens)")
                    steps = gr.Number(3000, label="Steps", precision=0, minimum=1)
                with gr.Row():
                    restarts = gr.Number(INVERT_DEFAULTS["restarts"], label="Restarts", precision=0, minimum=1)
                    method = gr.Dropdown(list(METHODS), value="pez", label="Method")
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                readable = gr.Checkbox(False, label="Readable (reads as text: VGD, then gradient and LM swaps)")
                with gr.Row():
                    run = gr.Button("Find a prompt", variant="primary")
                    stop = gr.Button("Stop", variant="stop")
            with gr.Column():
                panel = search_panel("image", "honest cosine")
        api = gr.Button(visible=False)

        model.change(model_note, model, note, api_visibility="private", queue=False)
        inputs = [images, texts, negative_images, negative_texts, model, prompt_len, steps, restarts, method, seed]

        @one_line_errors
        def run_page(images, texts, negative_images, negative_texts, model, prompt_len, steps, restarts, method, seed,
                     readable, request: gr.Request):  # fmt: skip
            values = (images, texts, negative_images, negative_texts, model, prompt_len, steps, restarts, method, seed)
            job = ctx.runner.start(
                session_key(request, "image"),
                lambda job: invert_images(ctx, *values, callback=job.callback, readable=readable),
            )
            yield from panel.stream(job, "cosine")

        def stop_page(request: gr.Request):
            stop_search(ctx, request, "image")

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
        ):
            values = (images, texts, negative_images, negative_texts, model, prompt_len, steps, restarts, method, seed)
            res, path = ctx.runner.run(lambda job: invert_images(ctx, *values))
            return res.text, res.score, str(path)

        run.click(run_page, [*inputs, readable], panel.outputs, api_visibility="private", **ctx.job_events())
        stop.click(stop_page, None, None, queue=False, api_visibility="private")
        api.click(api_invert, inputs, [panel.prompt, panel.score, panel.file], api_name="invert", **ctx.job_events())
