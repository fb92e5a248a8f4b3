"""One registry entry per extension point: a dataset or a flow method added here (one class or function plus
one registration) is listed, loads / runs, and reaches the cards; the processor's options have one list."""

from __future__ import annotations

import inspect
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import datasets
import numpy as np
import pytest

import dataset_scripts
from dataset_scripts import load_mer_dataset
from dataset_scripts.common import mer_features
from dataset_scripts.registry import DATASETS, DatasetSpec, dataset_names, help_text, register_dataset

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------- datasets
@dataclass
class TinyConfig(datasets.BuilderConfig):
    class_set: str | None = None
    on_error: str = "raise"


class TinyClips(datasets.GeneratorBasedBuilder):
    """A new dataset in one class: each sub-folder of data_dir is a subject with one clip of PNG frames."""

    BUILDER_CONFIG_CLASS = TinyConfig
    DEFAULT_CLASS_SET = "1class"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=DATASETS["tiny_clips"].card_text, features=mer_features(["smile"]))

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=datasets.Split.TRAIN)]

    def _generate_examples(self):
        for key, subject in enumerate(sorted(Path(self.config.data_dir).iterdir())):
            frames = sorted(subject.glob("*.png"))
            yield key, {"dataset": "tiny_clips", "subject": subject.name, "clip_id": f"{subject.name}_c1",
                        "frames": [str(f) for f in frames], "frame_numbers": list(range(len(frames))),
                        "onset": 0, "apex": 1, "apex_source": "annotated", "offset": len(frames) - 1,
                        "fps": 30.0, "action_units": "12", "emotion": "smile", "label": 0}


TINY = DatasetSpec(
    name="tiny_clips", builder=f"{__name__}:TinyClips", kind="clips", title="Tiny clips (a test's own set)",
    class_sets=("1class",), license_name="tiny-research-agreement",
    license_text="Tiny clips agreement: research only, no redistribution", citation="@misc{tiny2026, title={Tiny}}",
    card_text="Tiny clips: two subjects smiling for three frames, written by the test.", options=(),
)


@pytest.fixture
def tiny_registered():
    register_dataset(TINY)
    yield TINY
    del DATASETS["tiny_clips"]


def test_a_registered_dataset_is_listed_loads_and_reaches_the_cards(tmp_path, tiny_registered):
    from huggingface_hub import ModelCard

    from dataset_scripts.hub import dataset_card
    from modeling_mer.evaluation.card_mer import build_model_card

    for subject in ("s1", "s2"):
        (tmp_path / "data" / subject).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "data" / subject / f"{i}.png"), np.full((8, 8, 3), 40 * i, np.uint8))
    assert "tiny_clips" in dataset_scripts.DATASET_NAMES and dataset_scripts.DATASET_NAMES[-1] == "tiny_clips"
    assert "tiny_clips" in dataset_names("clips") and "tiny_clips" not in dataset_names("long")
    assert "tiny_clips: Tiny clips (a test's own set)" in help_text()  # --help and docs: one line per dataset
    ds = load_mer_dataset("tiny_clips", data_dir=tmp_path / "data", cache_dir=str(tmp_path / "cache"))
    assert ds["subject"] == ["s1", "s2"] and ds.features["label"].names == ["smile"] and len(ds[0]["frames"]) == 3
    with pytest.raises(ValueError, match="unknown option.*tiny_clips"):
        load_mer_dataset("tiny_clips", data_dir=tmp_path / "data", lazy=True)
    card = build_model_card(label_names=["smile"], train_datasets=["tiny_clips"], aggregation="mean", num_frames=3)
    text = str(card)
    assert TINY.card_text in text and TINY.citation in text and "Tiny clips (a test's own set)" in text
    assert card.data.license == "other" and "Research use only" in text  # research_only by default
    assert ModelCard(text).data.to_dict()["license"] == "other"
    assert TINY.card_text in str(dataset_card(ds)) and "tiny-research-agreement" in str(dataset_card(ds))


def test_registry_refuses_bad_entries():
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(DatasetSpec(**{**DATASETS["casme2"].__dict__, "title": "another"}))
    with pytest.raises(ValueError, match="builder must be 'module:Class'"):
        DatasetSpec(**{**TINY.__dict__, "builder": "tiny.py"})
    with pytest.raises(ValueError, match="kind must be one of"):
        DatasetSpec(**{**TINY.__dict__, "kind": "frames"})
    with pytest.raises(ValueError, match="parts .*'nope'"):
        register_dataset(DatasetSpec(**{**TINY.__dict__, "parts": ("nope",)}))
    with pytest.raises(ValueError, match="unknown dataset 'casme4'; choose from casme2, samm"):
        load_mer_dataset("casme4")
    assert "tiny_clips" not in DATASETS


def test_registry_entries_agree_with_their_builders():
    """Class sets, texts and defaults: the registry says what the builder does."""
    for spec in DATASETS.values():
        builder = spec.builder_class()
        if hasattr(builder, "CLASS_SET_LABELS"):  # the file builders: configs are the class sets
            assert builder.DEFAULT_CLASS_SET == spec.default_class_set, spec.name
            assert {c.name for c in builder.BUILDER_CONFIGS} == set(spec.class_sets), spec.name
        if hasattr(builder, "CITATION"):
            assert (builder.CITATION, builder.LICENSE) == (spec.citation, spec.license_text), spec.name
    for name in ("casme2", "samm", "smic", "composite", "synthetic"):
        assert DATASETS[name].kind == "clips"
    assert DATASETS["composite"].parts == ("casme2", "samm", "smic") and not DATASETS["synthetic"].research_only


def test_importing_the_registry_is_light():
    """train.py's --help reads the registry: importing it must not import datasets, torch or a builder."""
    code = ("import sys, time; t = time.perf_counter(); import dataset_scripts; from dataset_scripts.registry import "
            "DATASETS; print(time.perf_counter() - t, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('datasets', 'torch', 'cv2', 'modeling_mer') or m in ('dataset_scripts.casme2', 'dataset_scripts.synthetic')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    seconds, modules = out.stdout.split(" ", 1)
    assert modules.strip() == "[]", out.stdout + out.stderr
    assert float(seconds) < 0.5


# ------------------------------------------------------------------------------------ flow methods
def test_a_registered_flow_method_reaches_the_processor():
    from modeling_mer import optical_flow
    from modeling_mer.processing_mer import MERImageProcessor

    calls = []

    def make():  # the new method: a constant rightward flow of 1 px
        def flow(prev, nxt):
            calls.append(prev.shape)
            out = np.zeros((*prev.shape, 2), np.float32)
            out[..., 0] = 1.0
            return out

        return flow

    with pytest.raises(ValueError, match=r"flow='unit_right' is not supported; choose one of \['farneback', 'dis', 'tvl1'"):
        MERImageProcessor(flow="unit_right")
    optical_flow.register_flow_method("unit_right", make, "a constant 1 px to the right (a test)")
    try:
        assert "unit_right" in optical_flow.FLOW_METHODS
        with pytest.raises(ValueError, match="already registered"):
            optical_flow.register_flow_method("unit_right", make, "again")
        processor = MERImageProcessor(image_size=16, num_frames=2, crop="none", flow="unit_right", encoding="uv")
        frames = [np.full((16, 16, 3), 100 + i, np.uint8) for i in range(4)]
        out = processor.compute_flow(frames)
        assert calls and np.allclose(out["flow"][-1, 0], 1.0) and np.allclose(out["flow"][-1, 1], 0.0)
    finally:
        del optical_flow.FLOW_METHODS["unit_right"]
        optical_flow.flow_function.cache_clear()
    assert list(optical_flow.FLOW_METHODS) == ["farneback", "dis", "tvl1"]
    assert all(method.description for method in optical_flow.FLOW_METHODS.values())


# ------------------------------------------------------------------------------- processor options
def test_processor_options_have_one_list_and_the_card_shows_all_of_them():
    from modeling_mer.evaluation.hub_card import processor_settings
    from modeling_mer.processing_mer import MERImageProcessor

    parameters = [p for p in inspect.signature(MERImageProcessor.__init__).parameters
                  if p not in ("self", "kwargs", "image_mean", "image_std")]
    assert list(MERImageProcessor.option_names) == parameters  # the constructor takes exactly the listed options
    settings = processor_settings(MERImageProcessor(image_size=32, num_frames=2, crop="none", sampling="uniform"))
    assert list(settings) == parameters and settings["sampling"] == "uniform"
