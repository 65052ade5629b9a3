"""The result panel of a prompt search (the prompt with a copy button, its honest score, a live score-against-step
plot, the status line and the result JSON), the Stop buttons, and the Steps field of readable mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from pez.errors import PezError
from pez.ui.common import Context, budget_note, session_key, user_of
from pez.ui.live import Job


@dataclass
class SearchPanel:
    """The outputs of a prompt search, in the order of :attr:`outputs`."""

    prompt: gr.Textbox
    score: gr.Number
    status: gr.Markdown
    plot: gr.LinePlot
    file: gr.File

    @property
    def outputs(self) -> list:
        return [self.prompt, self.score, self.status, self.plot, self.file]

    def live(self, job: Job, score_name: str = "score") -> tuple:
        """The outputs while the job runs: best prompt so far, its honest score, the plot."""
        p = job.progress
        estimate = f" {job.estimate}" if job.estimate else ""
        if p is None:
            waiting = "Loading the model and the targets ..." if job.running else "Waiting for a running job to end ..."
            return ("", None, "Stopping ..." if job.stopping else waiting + estimate, None, None)
        stop = " Stopping after this step ..." if job.stopping else ""
        left = f" (about {p.elapsed / p.step * (p.steps - p.step):.0f} s left)" if 0 < p.step < p.steps else ""
        status = f"Step {p.step} / {p.steps}, {p.elapsed:.1f} s{left}: best honest {score_name} {p.best_score:.4f}."
        status += stop + estimate
        return (p.best_text, round(p.best_score, 4), status, score_plot(job.points), None)

    def done(self, res, path, job: Job) -> tuple:
        """The outputs of a finished search (``res`` a :class:`pez.PromptResult`)."""
        return (res.text, round(res.score, 4), search_status(res, path), score_plot(job.points), str(path))

    def stream(self, job: Job, score_name: str = "score"):
        """The outputs while ``job`` runs, then those of its result ``(PromptResult, path)``; its failure as a
        one-line error."""
        for _ in job.watch():
            if not job.finished.is_set():
                yield self.live(job, score_name)
        if job.error:
            raise PezError(job.error)
        res, path = job.result
        yield self.done(res, path, job)


def stop_job(ctx: Context, request: gr.Request | None, tab: str, stopping: str) -> str:
    """The Stop button of ``tab``: ask the session's job to stop; the line the tab's status shows at once."""
    if ctx.runner.stop(session_key(request, tab), user_of(request)):
        return f"Stopping ... {stopping}"
    return "No job of this page is running here (after a reload, find it in the Runs tab)."


def stop_search(ctx: Context, request: gr.Request | None, tab: str) -> str:
    """The Stop button of a search tab: the search ends after the step under way and keeps its best prompt."""
    return stop_job(ctx, request, tab, "the search ends after the step under way and keeps the best prompt so far.")


def search_panel(tab: str, score_label: str = "honest score") -> SearchPanel:
    """The outputs of a search in ``tab``; the prompt and the score have the element ids ``TAB-prompt``,
    ``TAB-score`` (for browser tests)."""
    prompt = gr.Textbox(label="Prompt", buttons=["copy"], interactive=False, lines=2, elem_id=f"{tab}-prompt")
    score = gr.Number(label=score_label, interactive=False, precision=4, elem_id=f"{tab}-score")
    status = gr.Markdown("", elem_classes=["pez-status"])
    plot = gr.LinePlot(None, x="step", y="score", x_title="step", y_title="best honest score", height=240)
    file = gr.File(label="Result JSON (the file the CLI's --out writes)", interactive=False)
    return SearchPanel(prompt, score, status, plot, file)


def score_plot(points: Sequence[tuple[int, float]]):
    import pandas as pd

    return pd.DataFrame({"step": [s for s, _ in points], "score": [v for _, v in points]})


def search_status(res, path) -> str:
    """One line about a finished search: score, steps, time, re-tokenisation, interruption, its seconds budget
    ending it, where it is saved."""
    t = res.timings
    line = f"{res.score_name} {res.score:.4f} after {res.steps_done} steps in {t.get('total_s', 0.0):.1f} s"
    if res.retokenized:
        line += f"; the optimised ids scored {res.internal_score:.4f} before re-tokenisation"
    if res.interrupted:
        line += "; stopped: the best prompt so far"
    line += budget_note(t)
    return f"{line}{readable_note(res)}. Saved in the runs folder as `{Path(path).name}`."


def readable_note(res) -> str:
    """What readable mode did, which the Steps field alone does not say: its stages and how many steps each ran
    (the last stage runs the Steps asked for, at most; with the field empty, as many as readable mode chooses)."""
    ex, steps, asked = res.extras, res.steps_done, res.config.get("steps")
    if "pez_steps" in ex:
        first = f"{ex['pez_steps']} PEZ steps for the words"
    elif "vgd_text" in ex:
        first = "VGD's beam searches for a first text"
    else:
        return ""
    return f" (readable mode: {first}, then {steps} of at most {asked} steps of edits under the LM prior)"


READABLE_STEPS = "Steps (readable: of its last stage; empty: its own choice)"


def steps_follow_readable(readable: gr.Checkbox, steps: gr.Number, default: int) -> None:
    """Readable mode sizes its own refinement unless asked: ticking Readable empties a Steps field still at the tab's
    ``default`` (a number typed there is kept and run); unticking fills an empty one with ``default`` again."""

    def follow(on, value):
        if on:
            return gr.update(value=None if value == default else value, label=READABLE_STEPS)
        return gr.update(value=default if value in (None, "") else value, label="Steps")

    readable.change(follow, [readable, steps], steps, api_visibility="private", queue=False)
