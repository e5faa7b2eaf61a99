"""Stage 6 of the HNeRV study: every run trained and evaluated, and the views the notebook shows.

:func:`run_study` trains (or reloads) and evaluates every run of
:func:`vtr.experiments.hnerv.model.study_plan`; :class:`Study` holds the runs with the data and the
profile section and answers the notebook's questions (the main run, the runs of a split, the
frames and runs shown in figures, the embedding checks, the run compared with the HNeRV paper).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from vtr.experiments.hnerv.data import PatchData
from vtr.experiments.hnerv.evaluate import Evaluation, embedding_checks, evaluate
from vtr.experiments.hnerv.model import RunSpec, study_plan
from vtr.experiments.hnerv.splits import HELD_OUT, TRAIN, FrameSplit, split_frames
from vtr.experiments.hnerv.train import train_run
from vtr.models.hnerv import parameter_counts, stored_values
from vtr.progress import show_progress
from vtr.runtime import resolve_device

if TYPE_CHECKING:
    from vtr.config import HnervConfig, Profile

#: The study table's columns the notebook shows (own-pixels columns are added when present).
OVERVIEW_COLUMNS = (
    "run",
    "weights",
    "embeddings",
    "stored",
    "train_psnr",
    "heldout_psnr",
    "gap_psnr",
    "train_ssim",
    "heldout_ssim",
    "train_cosine",
    "heldout_cosine",
    "gap_cosine",
)
OWN_PIXELS_COLUMNS = ("heldout_psnr_own_pixels", "heldout_cosine_own_pixels")
PAPER_SPLIT = "1_1_1"  # the HNeRV paper trains on every frame


@dataclass
class RunResult:
    spec: RunSpec
    params: dict[str, int]  # parameter_counts of the model
    stored: dict[str, int]  # stored_values for the training frames: what its decoder keeps
    history: pd.DataFrame
    evaluation: Evaluation  # held-out frames never read (content: interpolated embeddings)
    model: nn.Module
    own_pixels: Evaluation | None = None  # content only: held-out frames encoded from their pixels

    def row(self) -> dict[str, Any]:
        """One line of the study table: the run, what it stores and its summary; content runs add
        ``heldout_{psnr,ssim,cosine}_own_pixels`` (the autoencoder reading held-out pixels)."""
        row = {
            "run": self.spec.name,
            "kind": self.spec.kind,
            "size": self.spec.size,
            "split": self.spec.split,
            **self.stored,
            **self.evaluation.summary(),
        }
        if self.own_pixels is not None:
            own = self.own_pixels.summary()
            row.update({f"heldout_{m}_own_pixels": own[f"heldout_{m}"] for m in ("psnr", "ssim", "cosine")})
        return row


def run_study(
    cfg: Profile,
    data: PatchData,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    plan: Sequence[RunSpec] | None = None,
) -> list[RunResult]:
    """Train (or reload from the run cache) and evaluate every run of :func:`study_plan` (or ``plan``)."""
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    results = []
    specs = list(plan) if plan is not None else study_plan(cfg.hnerv)
    for spec in tqdm(specs, desc="hnerv runs", disable=not show_progress(progress)):
        net, trained = train_run(cfg, data, spec, device=dev)
        evaluation = evaluate(net, data, spec.split, device=dev)
        own = (
            evaluate(net, data, spec.split, device=dev, held_out="own pixels")
            if spec.kind == "content"
            else None
        )
        n_train = len(split_frames(data.n_frames, spec.split).train)
        stored = stored_values(net, n_train * data.n_patches)
        results.append(
            RunResult(spec, parameter_counts(net), stored, trained.history, evaluation, net.cpu(), own)
        )
    return results


def study_table(results: Sequence[RunResult]) -> pd.DataFrame:
    return pd.DataFrame([r.row() for r in results])


def long_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """Per run and group: PSNR, SSIM, cosine (per-frame means), for grouped bar charts."""
    rows = []
    for r in results:
        s = r.evaluation.summary()
        for group, tag in ((TRAIN, "train"), (HELD_OUT, "heldout")):
            rows.append(
                {
                    "run": r.spec.name,
                    "kind": r.spec.kind,
                    "size": r.spec.size,
                    "split": r.spec.split,
                    "group": group,
                    **{m: s[f"{tag}_{m}"] for m in ("psnr", "ssim", "cosine")},
                }
            )
    return pd.DataFrame(rows)


@dataclass
class Study:
    """The finished runs of one study with the data and the ``hnerv`` section that made them."""

    h: HnervConfig
    data: PatchData
    runs: list[RunResult]

    def run(self, name: str) -> RunResult:
        """The run called ``name`` (``RunSpec.name``), or a ``KeyError`` naming the runs there are."""
        for r in self.runs:
            if r.spec.name == name:
                return r
        raise KeyError(f"no run {name!r}; the study has {[r.spec.name for r in self.runs]}")

    @property
    def main(self) -> RunResult:
        """The coordinate model at ``main_size`` on ``main_split``."""
        return self.run(RunSpec("coords", self.h.main_size, self.h.main_split).name)

    @property
    def split(self) -> FrameSplit:
        """The main split's frames."""
        return split_frames(self.data.n_frames, self.h.main_split)

    def where(
        self, *, kind: str | None = None, split: str | None = None, size: str | None = None
    ) -> list[RunResult]:
        """The runs matching every given field, in study order."""
        wanted = {"kind": kind, "split": split, "size": size}
        return [r for r in self.runs if all(v is None or getattr(r.spec, k) == v for k, v in wanted.items())]

    def table(self) -> pd.DataFrame:
        """:func:`study_table` of every run."""
        return study_table(self.runs)

    def overview(self, digits: int = 3) -> pd.DataFrame:
        """The study table's :data:`OVERVIEW_COLUMNS` (and the own-pixels columns of content runs)."""
        table = self.table()
        columns = [*OVERVIEW_COLUMNS, *(c for c in OWN_PIXELS_COLUMNS if c in table)]
        return table[columns].round(digits)

    def bars(self) -> dict[str, pd.DataFrame]:
        """:func:`long_table` rows of the coordinate runs: ``"by size"`` on the main split and
        ``"by split"`` at the main size (splits without held-out frames dropped)."""
        long = long_table(self.runs)
        coords = long[long.kind == "coords"]
        return {
            "by size": coords[coords.split == self.h.main_split],
            "by split": coords[coords["size"] == self.h.main_size].dropna(subset=["psnr"]),
        }

    def showcase_frames(self) -> list[int]:
        """Two training and two held-out frames of the main split (second and middle of each)."""
        s = self.split
        return sorted(
            int(f) for f in (*s.train[[1, len(s.train) // 2]], *s.held_out[[0, len(s.held_out) // 2]])
        )

    def showcase_runs(self) -> list[RunResult]:
        """The runs on the main split shown beside the originals: the main run, the largest
        coordinate model and the content reference."""
        largest = list(self.h.widths)[-1]
        return [
            r
            for r in self.where(split=self.h.main_split)
            if r.spec.kind == "content" or r is self.main or r.spec.size == largest
        ]

    def checks(self) -> dict[str, dict[str, float | bool]]:
        """:func:`embedding_checks` of the main run and of the content runs on the main split."""
        checked = [
            r for r in self.where(split=self.h.main_split) if r is self.main or r.spec.kind == "content"
        ]
        return {
            r.spec.name: embedding_checks(r.evaluation.embeddings, self.data.targets, self.split)
            for r in checked
        }

    def paper_reference(self) -> RunResult:
        """The run to set beside the HNeRV paper's figure: a content run on ``1_1_1`` (the paper
        trains on every frame) when there is one, else the first content run, else the main run."""
        content = self.where(kind="content")
        on_all = [r for r in content if r.spec.split == PAPER_SPLIT]
        return (on_all or content or [self.main])[0]
