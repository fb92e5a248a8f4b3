"""What the two composites (`composite`: clips, `long_composite`: long videos) share: `data_dir` as a mapping
{part name: folder}, any subset of the known parts, an optional `sheet` mapping, one source per part."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar


class PartsMixin:
    """Mixed in before the builder class; the composite names its parts and how its messages call it."""

    PART_SOURCES: ClassVar[dict[str, type]] = {}
    PART_LABEL: ClassVar[str] = ""  # "unknown {PART_LABEL} part(s) ..."
    PART_TITLE: ClassVar[str] = ""  # "for {PART_TITLE}, sheet must map ..."
    NEEDS_MAPPING: ClassVar[str] = ""

    def __init__(self, *args: Any, data_dir: Any = None, **kwargs: Any):
        if isinstance(data_dir, Mapping):
            kwargs["data_dirs"] = {str(k): os.path.normpath(os.fspath(v)) for k, v in data_dir.items()}
            data_dir = None
        if data_dir is not None:
            raise ValueError(f"{self.NEEDS_MAPPING}, got {data_dir!r}")
        super().__init__(*args, **kwargs)

    def _check_parts(self) -> None:
        dirs = self.config.data_dirs
        if not dirs:
            raise ValueError(self.NEEDS_MAPPING)
        unknown = sorted(set(dirs) - set(self.PART_SOURCES))
        if unknown:
            raise ValueError(f"unknown {self.PART_LABEL} part(s) {unknown} in data_dir; expected {sorted(self.PART_SOURCES)}")
        sheets = self.config.sheet
        if sheets is not None and not (isinstance(sheets, Mapping) and set(sheets) <= set(dirs)):
            raise ValueError(f"for {self.PART_TITLE}, sheet must map a dataset name in data_dir to its sheet path")

    def _part_sources(self) -> dict[str, Any]:
        sheets = self.config.sheet or {}
        return {name: self.PART_SOURCES[name](path, release=self.config.release, sheet=sheets.get(name))
                for name, path in sorted(self.config.data_dirs.items())}
