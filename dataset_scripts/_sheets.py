"""Reading a coding sheet (.xlsx as distributed, or .csv), wherever its column row is."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._records import MERDataError, os_error, quote

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


@dataclass
class Grid:
    """One worksheet's cells (a .csv is one visible grid); `name` says which sheet in messages."""

    title: str
    visible: bool
    rows: list[Sequence[Any]]


def _read_grids(path: Path) -> list[Grid]:
    """All worksheets of an .xlsx (values, not formulas), hidden ones marked, or the single grid of a .csv."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            import openpyxl

            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                return [
                    Grid(sheet.title, sheet.sheet_state == "visible", list(sheet.iter_rows(values_only=True)))
                    for sheet in book.worksheets
                ]
            finally:
                book.close()
        if suffix == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as handle:
                return [Grid(path.name, True, list(csv.reader(handle)))]
    except MERDataError:
        raise
    except OSError as exc:  # permission denied, name too long...: the whole sheet is unreadable
        raise os_error(exc, str(path)) from exc
    except Exception as exc:  # openpyxl/csv raise many types for a damaged file; name the file
        raise MERDataError(f"cannot read the coding sheet ({type(exc).__name__}: {quote(str(exc))})", where=str(path)) from exc
    raise MERDataError(f"unsupported sheet format {quote(suffix)}; expected .xlsx or .csv", where=str(path))


def _match_header(row: Sequence[Any]) -> dict[str, int] | None:
    names = [_normalise_header(cell) for cell in row]
    columns: dict[str, int] = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in names:
                columns[canonical] = names.index(alias)
                break
    return columns if all(name in columns for name in REQUIRED_COLUMNS) else None


def _find_header(grid: Grid) -> tuple[int, dict[str, int]] | None:
    for header_index, row in enumerate(grid.rows[:HEADER_SEARCH_ROWS]):
        columns = _match_header(row)
        if columns is not None:
            return header_index, columns
    return None


def _choose_grid(path: Path, grids: list[Grid]) -> tuple[Grid, int, dict[str, int]] | None:
    """The one visible worksheet with a column row. Hidden sheets never supply rows (an outdated copy is
    often kept hidden); two visible candidates, or a column row only on a hidden sheet, are errors naming
    the sheets, never a silent choice."""
    found = [(grid, *header) for grid in grids if (header := _find_header(grid)) is not None]
    visible = [entry for entry in found if entry[0].visible]
    if len(visible) == 1:
        return visible[0]
    if len(visible) > 1:
        names = " and ".join(repr(entry[0].title) for entry in visible)
        raise MERDataError(
            f"worksheets {names} both have a column row: which one holds the clips is ambiguous; delete or hide "
            "the outdated one, or save the right one as .csv and pass sheet=<that file>",
            where=str(path),
        )
    if found:
        names = ", ".join(repr(entry[0].title) for entry in found)
        raise MERDataError(
            f"the column row is only on hidden worksheet(s) {names}; unhide the sheet that holds the clips "
            "(hidden sheets are never read: they are often outdated copies)",
            where=str(path),
        )
    return None


def read_sheet(path: Path) -> list[SheetRow]:
    """Read a coding sheet, finding its column row wherever it is (SAMM has 13 preamble rows).

    Unnamed columns are ignored; blank rows are not clips and are passed over. In a workbook the rows
    come from the one visible worksheet with a column row (see `_choose_grid`).
    """
    grids = _read_grids(path)
    chosen = _choose_grid(path, grids)
    if chosen is not None:
        grid, header_index, columns = chosen
        label = f"{path} sheet {grid.title!r}" if len(grids) > 1 else str(path)
        rows = []
        for index in range(header_index + 1, len(grid.rows)):
            raw = grid.rows[index]
            if all(cell is None or str(cell).strip() == "" for cell in raw):
                continue
            cells = {name: (raw[col] if col < len(raw) else None) for name, col in columns.items()}
            rows.append(SheetRow(cells, f"{label} row {index + 1}"))
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
        raise MERDataError(f"{column} must be a non-negative frame number, got {quote(value)}", where=where)
    return int(number)


def cell_text(value: Any) -> str:
    """Text of a cell as written ('' for empty; 12.0 from Excel becomes '12')."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
