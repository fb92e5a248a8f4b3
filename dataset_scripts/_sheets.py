"""Reading a coding sheet (.xlsx as distributed, or .csv), wherever its column row is."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._records import MERDataError

HEADER_SEARCH_ROWS = 40

# Canonical column -> accepted spellings after normalisation (lower case, letters and digits only).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "subject": ("subject", "sub"),
    "filename": ("filename", "clip", "clipname"),
    "onset": ("onsetframe", "onset"),
    "apex": ("apexframe", "apex"),
    "offset": ("offsetframe", "offset"),
    "action_units": ("actionunits", "aus", "au"),
    "emotion": ("estimatedemotion", "emotion"),
}
REQUIRED_COLUMNS = ("subject", "filename", "onset", "apex", "offset", "emotion")
MISSING_APEX_CELLS = frozenset({"/", "", "-", "nan", "none"})


@dataclass
class SheetRow:
    """The cells of one data row under canonical column names; `where` is 'file row N' (1-based)."""

    cells: dict[str, Any]
    where: str


def _normalise_header(cell: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(cell).lower()) if cell is not None else ""


def _read_grids(path: Path) -> list[list[Sequence[Any]]]:
    """All worksheets of an .xlsx (values, not formulas) or the single grid of a .csv."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import openpyxl

            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                return [list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets]
            finally:
                book.close()
        if suffix == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as handle:
                return [list(csv.reader(handle))]
    except MERDataError:
        raise
    except Exception as exc:  # openpyxl/csv raise many types for a damaged file; name the file
        raise MERDataError(f"cannot read the coding sheet ({type(exc).__name__}: {exc})", where=str(path)) from exc
    raise MERDataError(f"unsupported sheet format {suffix!r}; expected .xlsx or .csv", where=str(path))


def _match_header(row: Sequence[Any]) -> dict[str, int] | None:
    names = [_normalise_header(cell) for cell in row]
    columns: dict[str, int] = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in names:
                columns[canonical] = names.index(alias)
                break
    return columns if all(name in columns for name in REQUIRED_COLUMNS) else None


def read_sheet(path: Path) -> list[SheetRow]:
    """Read a coding sheet, finding its column row wherever it is (SAMM has 13 preamble rows).

    Unnamed columns are ignored; blank rows are not clips and are passed over.
    """
    for grid in _read_grids(path):
        for header_index, row in enumerate(grid[:HEADER_SEARCH_ROWS]):
            columns = _match_header(row)
            if columns is None:
                continue
            rows = []
            for index in range(header_index + 1, len(grid)):
                raw = grid[index]
                if all(cell is None or str(cell).strip() == "" for cell in raw):
                    continue
                cells = {name: (raw[col] if col < len(raw) else None) for name, col in columns.items()}
                rows.append(SheetRow(cells, f"{path} row {index + 1}"))
            return rows
    wanted = ", ".join(COLUMN_ALIASES[name][0] for name in REQUIRED_COLUMNS)
    raise MERDataError(
        f"no column row found in the first {HEADER_SEARCH_ROWS} rows of any worksheet "
        f"(looked for a row naming the columns {wanted}; spaces and case do not matter, "
        "'Emotion' may stand for 'Estimated Emotion')",
        where=str(path),
    )


def parse_frame_cell(value: Any, column: str, where: str, *, optional: bool = False) -> int | None:
    """An integer frame number from a sheet cell (Excel hands over floats like 46.0)."""
    text = "" if value is None else str(value).strip()
    if optional and text.lower() in MISSING_APEX_CELLS:
        return None
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not number.is_integer() or number < 0:
        raise MERDataError(f"{column} must be a non-negative frame number, got {value!r}", where=where)
    return int(number)


def cell_text(value: Any) -> str:
    """Text of a cell as written ('' for empty; 12.0 from Excel becomes '12')."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
