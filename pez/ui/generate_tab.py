"""Check by generating: images from a prompt with a diffusers pipeline, beside the targets, with their image-image
score under a reference CLIP (``pez evaluate-images`` for one prompt: :func:`pez.check_by_generating`). Shown when
a pipeline is configured (``pez ui --pipeline P``); API endpoint ``/check``.

The job generates one image at a time (image k from seed ``seed + k``, the same image whatever the number of
generations), so the page shows each as it comes and Stop ends the job after the image under way, keeping and
saving the finished ones. Every check is saved under ``--runs`` as a folder (``check.json``, the generations,
``contact_sheet.png``) that the Runs tab lists."""

from __future__ import annotations

import statistics
from pathlib import Path

import gradio as gr

from pez.errors import PezError
from pez.ui.common import (
    Context,
    Number,
    bounded,
    bounded_text,
    file_paths,
    one_line_errors,
    session_key,
    user_of,
)
from pez.ui.common import real_number as real
from pez.ui.panel import stop_job


def check_by_generating(ctx: Context, prompt, targets, reference, generations, seed, steps, guidance, job=None,
                        user=None):  # fmt: skip
    """Generate from ``prompt`` and score against the uploaded targets with :func:`pez.check_by_generating`, one
    generation at a time (each reported to ``job`` with :meth:`Job.note`; after Stop, the finished ones are kept);
    save the check in a new folder of ``user``'s runs; (check, images, folder)."""
    import pez
    from pez.generation.sheets import contact_sheet
    from pez.images import load_image

    limits = ctx.limits
    prompt = bounded_text(prompt, "Prompt", limits.text_chars)
    paths = file_paths(targets, "target images", ctx.options)
    if not paths:
        raise PezError("no target images: upload the images the prompt should reproduce")
    n = bounded(generations, "Generations", 1, limits.generations)
    seed = bounded(seed, "Seed", 0, limits.seed - limits.generations)
    steps = bounded(steps, "Inference steps", 1, limits.inference_steps)
    guidance = real(guidance, "Guidance")
    folder = ctx.store_for(user).new_path("check", "")
    checks, images = [], []
    for k in range(n):
        if job is not None and job.stopping:
            break
        check, (image,) = pez.check_by_generating(
            prompt, paths, ctx.options.pipeline, reference, out=folder, loaded=ctx.cache, device=ctx.options.device,
            generations=1, seed=seed + k, steps=steps, guidance=guidance,
        )  # fmt: skip
        checks.append(check)
        images.append(image)
        if job is not None:
            job.note((check, image))
    if not checks:
        raise KeyboardInterrupt  # stopped before the first image: nothing to keep
    scores = [c.scores[0] for c in checks]
    std = statistics.stdev(scores) if len(scores) > 1 else 0.0
    check = pez.PromptCheck(checks[0].prompt, checks[0].targets, scores, statistics.fmean(scores), std, seed,
                            [c.images[0] for c in checks])  # fmt: skip
    check.save(folder / "check.json")
    caption = f"{check.prompt}  ({check.mean:.3f}{', stopped' if len(checks) < n else ''})"
    contact_sheet([([load_image(p) for p in paths[:2]], images, caption)]).save(folder / "contact_sheet.png")
    return check, images, folder


def check_status(job, total: int) -> str:
    """The live line of a check: the generations so far and their mean cosine."""
    if not job.running and not job.notes:
        return "Stopping ..." if job.stopping else "Waiting for a running job to end ..."
    scores = [c.scores[0] for c, _ in job.notes]
    so_far = f" Mean cosine so far {statistics.fmean(scores):.4f}." if scores else ""
    stop = " Stopping after the image under way ..." if job.stopping else ""
    return f"Generation {len(scores) + 1} of {total} under way.{so_far}{stop}"


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
                    generations = Number(4, label="Generations", precision=0)
                    seed = Number(0, label="Seed", precision=0)
                    steps = Number(50, label="Inference steps", precision=0)
                    guidance = Number(7.5, label="Guidance")
                with gr.Row():
                    run = gr.Button("Generate and score", variant="primary", elem_id="generate-run")
                    stop = gr.Button("Stop", variant="stop", elem_id="generate-stop")
            with gr.Column():
                status = gr.Markdown(elem_classes=["pez-status"])
                score = gr.Number(label="Image-image cosine (mean over generations)", elem_id="generate-score")
                gallery = gr.Gallery(label="Generations", columns=4)
                sheet = gr.Image(label="Contact sheet", type="filepath")
                report = gr.File(label="check.json")
        api = gr.Button(visible=False)
        inputs = [prompt, targets, reference, generations, seed, steps, guidance]

        @one_line_errors
        def run_page(prompt, targets, reference, generations, seed, steps, guidance, request: gr.Request):
            values = (prompt, targets, reference, generations, seed, steps, guidance)
            total = bounded(generations, "Generations", 1, ctx.limits.generations)
            user = user_of(request)
            job = ctx.runner.start(
                session_key(request, "generate"),
                lambda job: check_by_generating(ctx, *values, job=job, user=user),
                "check",
                user,
            )
            for _ in job.watch():
                if not job.finished.is_set():
                    yield check_status(job, total), gr.update(), [image for _, image in job.notes], None, None
            if job.error:
                raise PezError(job.error)
            check, images, path = job.result
            stopped = f" Stopped after {len(images)} of {total}." if len(images) < total else ""
            line = f"Mean cosine {check.mean:.4f} over {len(images)} generations.{stopped} Saved as `{path.name}`."
            yield line, check.mean, images, str(path / "contact_sheet.png"), str(path / "check.json")

        def stop_page(request: gr.Request):
            return stop_job(ctx, request, "generate", "it ends after the image under way; finished ones are kept.")

        @one_line_errors
        def api_check(prompt, targets, reference, generations, seed, steps, guidance, request: gr.Request):
            values = (prompt, targets, reference, generations, seed, steps, guidance)
            user = user_of(request)
            check, images, path = ctx.runner.run(
                lambda job: check_by_generating(ctx, *values, job=job, user=user), "check", user
            )
            return check.mean, images, str(Path(path) / "contact_sheet.png"), str(Path(path) / "check.json")

        outputs = [status, score, gallery, sheet, report]
        run.click(run_page, inputs, outputs, api_visibility="private", **ctx.job_events())
        stop.click(stop_page, None, status, queue=False, api_visibility="private")
        api.click(api_check, inputs, [score, gallery, sheet, report], api_name="check", **ctx.job_events())
