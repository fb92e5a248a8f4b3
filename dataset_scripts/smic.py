"""SMIC-HS (Li et al., FG 2013) as distributed: `HS/s1/micro/negative/s1_ne_01/image559740.bmp`.

There is no coding sheet: the emotion is the folder name (negative, positive, surprise), onset and offset
are the first and last frame in the clip folder, and there is no apex annotation (it is estimated, see
`spot_apex`). The cropped release mirrors the layout under `SMIC_all_cropped/HS`. Subject folders without
a `micro` folder hold no micro-expression clips and are passed over (and named in the build notes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from ._builder import SingleSourceBuilder
from ._layout import SEARCH_DEPTH, check_release, has_subjects, walk_dirs
from ._records import BadClip, ClipSpec, MERDataError
from ._sources import ClipSource
from .common import CLASS_SETS
from .registry import DATASETS

SUBJECT_RE = re.compile(r"s(\d+)", re.IGNORECASE)


def _is_cropped(folder: Path, data_dir: Path) -> bool:
    """Whether an HS folder belongs to the cropped release (lies below a folder such as SMIC_all_cropped)."""
    parents = folder.relative_to(data_dir).parts[:-1] if folder != data_dir else (data_dir.parent.name,)
    return any("crop" in part.lower() for part in parents)


class SMICSource(ClipSource):
    dataset = "smic"
    fps = 100.0
    emotions = frozenset({"negative", "positive", "surprise"})

    def _frame_root(self) -> tuple[Path, str]:
        if hasattr(self, "_root_cache"):
            return self._root_cache
        check_release(self.release)
        found: dict[str, Path] = {}
        for folder in walk_dirs(self.data_dir):
            if folder.name.lower() == "hs" and has_subjects(folder, SUBJECT_RE):
                kind = "cropped" if _is_cropped(folder, self.data_dir) else "raw"
                found.setdefault(kind, folder)
        if not found and has_subjects(self.data_dir, SUBJECT_RE):
            found["cropped" if _is_cropped(self.data_dir, self.data_dir) else "raw"] = self.data_dir
        for kind in ("raw", "cropped"):
            if kind in found and self.release in ("auto", kind):
                self._root_cache = (found[kind], kind)
                return self._root_cache
        raise MERDataError(
            f"no SMIC-HS {self.release if self.release != 'auto' else ''} frame folder found below "
            f"{self.data_dir}: looked for a folder named HS (raw, or below SMIC_all_cropped for the cropped "
            f"release, up to {SEARCH_DEPTH} levels down) or subject folders s1, s2, ... directly in it"
        )

    def _read_specs(self) -> list[ClipSpec | BadClip]:
        root = self.frame_root
        subjects = sorted(
            (p for p in root.iterdir() if p.is_dir() and SUBJECT_RE.fullmatch(p.name)),
            key=lambda p: int(SUBJECT_RE.fullmatch(p.name).group(1)),
        )
        without = [p.name for p in subjects if not (p / "micro").exists()]
        if without:
            self.notes.append(f"Subject folders without a micro folder (no clips): {', '.join(without)}.")
        specs: list[ClipSpec | BadClip] = []
        for subject in subjects:
            micro = subject / "micro"
            if not micro.exists():
                continue
            if not micro.is_dir():
                specs.append(
                    BadClip(
                        self.dataset, subject.name, "", f"folder {subject}",
                        f"{micro} is a file, not a folder of emotion folders: none of {subject.name}'s clips "
                        "can be listed",
                    )
                )
                continue
            for emotion_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
                for clip in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                    where = f"clip folder {clip}"
                    try:
                        emotion = self.checked_emotion(emotion_dir.name, f"emotion folder {emotion_dir}")
                    except MERDataError as exc:
                        specs.append(BadClip.from_error(self.dataset, subject.name, clip.name, where, exc))
                        continue
                    specs.append(
                        ClipSpec(
                            dataset=self.dataset,
                            subject=subject.name,
                            clip_id=clip.name,
                            folder=clip,
                            frame_root=root,
                            onset=None,
                            apex=None,
                            offset=None,
                            fps=self.fps,
                            action_units="",
                            emotion=emotion,
                            where=where,
                        )
                    )
        if not specs:
            raise MERDataError("no clip folders found under <subject>/micro/<emotion>/", where=str(root))
        return specs


class SMIC(SingleSourceBuilder):
    """SMIC-HS; class set 3class (default; the same as all)."""

    SOURCE = SMICSource
    DEFAULT_CLASS_SET = "3class"
    CLASS_SET_LABELS: ClassVar[dict[str, list[str]]] = {"3class": CLASS_SETS["3class"]}
    DESCRIPTION = DATASETS["smic"].card_text  # the registry owns the texts (dataset_scripts/registry.py)
    CITATION = DATASETS["smic"].citation
    HOMEPAGE = DATASETS["smic"].homepage
    LICENSE = DATASETS["smic"].license_text
