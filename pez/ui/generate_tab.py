"""Check by generating: images from a prompt with a diffusers pipeline, beside the targets, with their image-image
score under a reference CLIP (``pez evaluate-images`` for one prompt: :func:`pez.check_prompt`). Shown when a
pipeline is configured (``pez ui --pipeline P``); API endpoint ``/check``."""

from __future__ import annotations

import gradio as gr

from pez.errors import PezError
from pez.ui.common import Context, file_paths, one_line_errors
from pez.ui.common import real_number as real
from pez.ui.common import whole_number as number


def check_by_generating(ctx: Context, prompt, targets, reference, generations, seed, steps, guidance):
    """Generate from ``prompt`` and score against the uploaded targets through :func:`pez.check_by_generating`;
    (check, images, folder)."""
    import pez

    paths = file_paths(targets, "target images", ctx.options)
    if not paths:
        raise PezError("no target images: upload the images the prompt should reproduce")
    path = ctx.store.new_path("check", "")
    check, images = pez.check_by_generating(
        prompt, paths, ctx.options.pipeline, reference, out=path, loaded=ctx.cache, device=ctx.options.device,
        generations=number(generations, "generations", 1), seed=number(seed, "seed"),
        steps=number(steps, "inference steps", 1), guidance=real(guidance, "guidance"),
    )  # fmt: skip
    return check, images, path


def build_generate_tab(ctx: Context) -> None:
    from pez.generation.scoring import DEFAULT_REFERENCE

    with gr.Tab("Check by generating", id="generate", elem_id="generate-tab"):
        if not ctx.options.pipeline:
            gr.Markdown(
                "No diffusers pipeline is configured. Start the page with `pez ui --pipeline P` (a hub name such "
                "as `stabilityai/stable-diffusion-2-1-base`, which needs the network once, or a local folder saved "
                "with `save_pretrained`) to generate images from a prompt and score them against its targets."
            )
            return
        gr.Markdown(f"Generate from a prompt with `{ctx.options.pipeline}` and score each image against the targets.")
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(label="Prompt", lines=2, elem_id="generate-prompt")
                targets = gr.File(label="Target images", file_count="multiple", file_types=["image"])
                reference = gr.Textbox(ctx.options.reference_model or DEFAULT_REFERENCE, label="Reference CLIP")
                with gr.Row():
                    generations = gr.Number(4, label="Generations", precision=0, minimum=1)
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                    steps = gr.Number(50, label="Inference steps", precision=0, minimum=1)
                    guidance = gr.Number(7.5, label="Guidance")
                run = gr.Button("Generate and score", variant="primary", elem_id="generate-run")
            with gr.Column():
                score = gr.Number(label="Image-image cosine (mean over generations)", elem_id="generate-score")
                gallery = gr.Gallery(label="Generations", columns=4)
                sheet = gr.Image(label="Contact sheet", type="filepath")
                report = gr.File(label="check.json")

        @one_line_errors
        def run_check(prompt, targets, reference, generations, seed, steps, guidance):
            check, images, path = ctx.runner.run(
                lambda job: check_by_generating(ctx, prompt, targets, reference, generations, seed, steps, guidance)
            )
            return check.mean, images, str(path / "contact_sheet.png"), str(path / "check.json")

        inputs = [prompt, targets, reference, generations, seed, steps, guidance]
        run.click(run_check, inputs, [score, gallery, sheet, report], api_name="check", **ctx.job_events())
