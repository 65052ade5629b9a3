"""Results of the image jobs: :class:`DatasetRun` (``invert_dataset``), :class:`PromptCheck` (one prompt checked
by generating) and :class:`ImageReport` (``evaluate_images``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pez.records.base import Record


@dataclass
class DatasetRun(Record):
    """What one ``invert_dataset`` call did (in this process)."""

    out: str
    images: int  # in the source (all shards)
    done: int  # inverted by this call
    skipped: int  # unreadable, recorded as skipped by this call
    already_done: int  # found in the output and not redone
    seconds: float
    images_per_hour: float
    rank: int = 0
    world: int = 1
    merged: bool = False
    interrupted: bool = False
    failures: list[dict] = field(default_factory=list)
    mean_score: float | None = None  # the mean honest score of the images inverted by this call
    budget_spent: bool = False  # the run's budget ended it: the images not started are left for a rerun


@dataclass
class PromptCheck(Record):
    """One prompt's generations and their image-image cosines with its targets."""

    prompt: str
    targets: list[str]
    scores: list[float]  # per generation: mean cosine with the targets
    mean: float
    std: float
    seed: int
    images: list[str] = field(default_factory=list)  # where the generations were saved


@dataclass
class ImageReport(Record):
    """``pez evaluate-images``: one row per results file, each with its items."""

    pipeline: str
    reference_model: str
    generations: int
    seed: int
    steps: int
    guidance: float
    rows: list[dict] = field(default_factory=list)
    prompts: int = 0  # in the results files
    reused: int = 0  # checks kept from an earlier run into the same folder, not generated again
    interrupted: bool = False  # stopped early: the rows hold the prompts checked before the stop

    def to_markdown(self) -> str:
        """The paper-style table: one row per results file."""
        lines = [
            f"Generated with `{self.pipeline}` ({self.generations} images per prompt, {self.steps} steps, "
            f"guidance {self.guidance:g}, seeds {self.seed}..{self.seed + self.generations - 1}); image-image "
            f"cosine with the targets under `{self.reference_model}`.\n",
            "| results | model | method | prompt tokens | prompts | cosine (mean ± std over prompts) |",
            "|---|---|---|---:|---:|---:|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r['name']} | {r['model']} | {r['method']} | {r['prompt_tokens']:g} | {r['n']} | "
                f"{r['mean']:.4f} ± {r['std']:.4f} |"
            )
        if self.interrupted:
            checked = sum(r["n"] for r in self.rows)
            lines.append(
                f"\nInterrupted: {checked} of {self.prompts} prompts checked; a rerun into the same folder continues."
            )
        return "\n".join(lines) + "\n"
