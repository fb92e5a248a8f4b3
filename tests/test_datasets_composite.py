"""The MEGC2019 composite: exactly the official rows (all of them, or those of the subjects present)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import datasets
import pytest
from dataset_trees import casme2_tree, composite_rows, rows_of_subjects, samm_tree, smic_tree, table

from dataset_scripts import MEGC2019Composite, MERDataError, load_mer_dataset
from dataset_scripts.common import CLASS_SETS

datasets.disable_progress_bars()
NAMES = CLASS_SETS["3class"]


def _official(datasets_present: set[str], subjects: set[tuple[str, str]] | None = None) -> set[tuple]:
    rows = set()
    for dataset, subject, clip, label in composite_rows():
        subject = f"{int(subject):03d}" if dataset == "samm" else subject
        if dataset in datasets_present and (subjects is None or (dataset, subject) in subjects):
            rows.add((dataset, f"{dataset}_{subject}", clip, NAMES[label]))
    return rows


def test_shipped_list_is_the_official_one() -> None:
    shipped = Path(__file__).resolve().parents[1] / "dataset_scripts" / "megc2019_composite_3class.csv"
    official = Path(__file__).resolve().parent / "data" / "metadata" / shipped.name
    assert shipped.read_bytes() == official.read_bytes()


def test_full_composite_plan_is_the_official_list(tmp_path: Path) -> None:
    dirs = {
        "casme2": str(casme2_tree(tmp_path / "casme2", table("casme2_coding"), frames=False)),
        "samm": str(samm_tree(tmp_path / "samm", table("samm_coding"), frames=False)),
        "smic": str(smic_tree(tmp_path / "smic", table("smic_hs_coding"), frames=False)),
    }
    builder = MEGC2019Composite(data_dir=dirs, cache_dir=str(tmp_path / "cache"))
    plan = builder.plan()
    assert plan.bad == [] and builder.info.features["label"].names == NAMES
    got = [(s.dataset, s.subject, s.clip_id, label) for s, label in plan.clips]
    assert len(got) == 442 and set(got) == _official({"casme2", "samm", "smic"})
    assert Counter(d for d, *_ in got) == {"smic": 164, "casme2": 145, "samm": 133}
    assert len({s for _, s, *_ in got}) == 68
    by_clip = {(s.dataset, s.clip_id, s.subject): s for s, _ in plan.clips}
    assert by_clip[("samm", "006_1_2", "samm_006")].emotion == "Anger"  # emotion as written in the source


def test_partial_composite_build_has_exactly_the_present_rows(tmp_path: Path, capsys) -> None:
    casme_rows = rows_of_subjects(table("casme2_coding"), ["1", "2"])
    casme = casme2_tree(tmp_path / "casme2", casme_rows)
    full_sheet = casme2_tree(tmp_path / "sheet", table("casme2_coding"), frames=False)
    shutil.copy(full_sheet / "CASME2-coding-20140508.xlsx", casme / "CASME2-coding-20140508.xlsx")
    smic = smic_tree(tmp_path / "smic", rows_of_subjects(table("smic_hs_coding"), ["s1"]))
    ds = load_mer_dataset(
        "composite", {"casme2": casme, "smic": smic}, cache_dir=str(tmp_path / "cache"), lazy=True, spot_apex=False
    )
    got = set(zip(ds["dataset"], ds["subject"], ds["clip_id"], ds.features["label"].int2str(ds["label"])))
    assert got == _official({"casme2", "smic"}, {("casme2", "sub01"), ("casme2", "sub02"), ("smic", "s1")})
    assert len(got) == len(ds) and set(ds["fps"]) == {100.0, 200.0}
    description = ds.info.description
    assert "Datasets absent from data_dir: samm." in description
    assert "casme2 subjects absent (no folder): sub03" in description
    assert "0 clip(s) skipped" in description and capsys.readouterr().out == ""


def test_official_clip_missing_from_the_sheet_is_an_error(tmp_path: Path) -> None:
    rows = [r for r in rows_of_subjects(table("casme2_coding"), ["1"]) if r["Filename"] != "EP19_05f"]
    casme = casme2_tree(tmp_path / "casme2", rows)
    with pytest.raises(MERDataError, match=r"megc2019_composite_3class\.csv row 2: official clip casme2 sub01/EP19_05f"):
        load_mer_dataset("composite", {"casme2": casme}, cache_dir=str(tmp_path / "cache"), lazy=True)


def test_composite_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3class only"):
        load_mer_dataset("composite", {"smic": tmp_path}, class_set="all")
    with pytest.raises(ValueError, match=r"unknown composite part\(s\) \['casme3'\]"):
        load_mer_dataset("composite", {"casme3": tmp_path}, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="a mapping"):
        MEGC2019Composite(data_dir=str(tmp_path), cache_dir=str(tmp_path))
