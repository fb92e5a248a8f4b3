"""What HuggingFace users expect: batched processor calls, the registered pipeline, the model card, the
requirements error of the remote-code processor."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from PIL import Image

import modeling_mer
from dataset_scripts.registry import DATASETS
from modeling_mer import (
    MERConfig,
    MERForVideoClassification,
    MERImageProcessor,
    MERVideoClassificationPipeline,
)
from modeling_mer.evaluation.card_mer import PROCESSOR_REQUIREMENTS, RESEARCH_ONLY_LICENSE, SLSTT_CITATION

REPO = Path(__file__).resolve().parents[1]
LABELS = ["negative", "positive", "surprise"]
SIZE = 32


def moving_clip(dx: float, dy: float, count: int = 6, seed: int = 0) -> list[np.ndarray]:
    """A smooth texture translated a little more in every frame (up to the middle, then back)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur((rng.random((SIZE + 16, SIZE + 16)) * 255).astype(np.float32), (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    frames = []
    for i in range(count):
        step = min(i, count - 1 - i)
        matrix = np.float32([[1, 0, dx * step], [0, 1, dy * step]])
        moved = cv2.warpAffine(base, matrix, base.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        frames.append(np.repeat(moved[8 : 8 + SIZE, 8 : 8 + SIZE, None], 3, axis=-1))
    return frames


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuvj420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_folder(path: Path, frames: list[np.ndarray], first: int = 10) -> Path:
    path.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"img{first + i}.png")
    return path


def processor() -> MERImageProcessor:
    return MERImageProcessor(image_size=SIZE, num_frames=4, crop="none")


def saved_model(folder: Path, **config) -> Path:
    torch.manual_seed(0)
    settings = {"labels": LABELS, "num_frames": 4, "vision_config": {"image_size": SIZE}} | config
    MERForVideoClassification(MERConfig.from_preset("tiny", **settings)).eval().save_pretrained(folder)
    processor().save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------------- processor batches
def test_a_list_of_clips_is_the_per_clip_outputs_stacked(tmp_path):
    proc = processor()
    a, b, c = moving_clip(1.0, 0.0), moving_clip(0.0, 1.0, count=7, seed=1), moving_clip(-1.0, 0.5, seed=2)
    folder, video = write_folder(tmp_path / "b", b), write_video(tmp_path / "c.avi", c)
    singles = [proc(a, apex=2), proc(videos=folder, onset=10, offset=16), proc(video)]
    batch = proc(videos=[a, folder, str(video)], apex=[2, None, None], onset=[None, 10, None], offset=[None, 16, None])
    assert batch["pixel_values"].shape == (3, 4, 3, SIZE, SIZE)
    for key in ("pixel_values", "frame_numbers", "apex", "apex_estimated"):
        torch.testing.assert_close(batch[key], torch.cat([one[key] for one in singles]), rtol=0, atol=0)
    assert batch["apex_estimated"].tolist() == [False, True, True]
    # a (B, T, H, W, C) array is a batch; one clip given as (T, H, W, C) or as a frame list is one clip
    stacked = np.stack([np.stack(a), np.stack(c)])
    torch.testing.assert_close(proc(stacked)["pixel_values"], torch.cat([proc(a)["pixel_values"], proc(c)["pixel_values"]]))
    assert proc(np.stack(a))["pixel_values"].shape[0] == 1 and proc(a)["pixel_values"].shape[0] == 1


def test_batch_settings_are_one_per_clip():
    clips = [moving_clip(1.0, 0.0), moving_clip(0.0, 1.0)]
    with pytest.raises(ValueError, match="apex: a batch of 2 clips needs a list of 2 values"):
        processor()(clips, apex=3)
    with pytest.raises(TypeError, match="videos="):
        processor()()


# ------------------------------------------------------------------------------------------ pipeline
def test_pipeline_needs_no_trust_remote_code_after_import(tmp_path):
    from transformers import pipeline

    model_dir = saved_model(tmp_path / "model")
    assert "video-classification" in json.loads((model_dir / "config.json").read_text())["custom_pipelines"]
    frames = moving_clip(1.0, 0.0)
    folder = write_folder(tmp_path / "frames", frames, first=0)
    pipe = pipeline("video-classification", model=str(model_dir))  # no trust_remote_code, no prompt
    assert type(pipe) is MERVideoClassificationPipeline
    scores = {r["label"]: r["score"] for r in pipe(str(folder), apex=2, top_k=3)}
    model = MERForVideoClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        probs = model(processor()(frames, apex=2)["pixel_values"]).logits.softmax(-1)[0]
    assert scores == pytest.approx(dict(zip(LABELS, probs.tolist())), abs=1e-5)


def test_other_video_models_keep_transformers_pipeline(tmp_path):
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor, pipeline
    from transformers.pipelines.video_classification import VideoClassificationPipeline

    config = VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, num_labels=2)
    VideoMAEForVideoClassification(config).save_pretrained(tmp_path / "videomae")
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "videomae"
    )
    pipe = pipeline("video-classification", model=str(tmp_path / "videomae"))
    assert type(pipe) is VideoClassificationPipeline


# ---------------------------------------------------------------------------------------- model card
def card_of(folder: Path) -> tuple[dict, str]:
    card = ModelCard.load(folder / "README.md")
    return card.data.to_dict(), card.text


@pytest.mark.parametrize(
    ("datasets", "license_name", "phrase"),
    [
        (["synthetic"], None, "Apache-2.0, for the code and for these weights"),
        (["casme2"], RESEARCH_ONLY_LICENSE, "Research use only"),
        (["composite"], RESEARCH_ONLY_LICENSE, "SMIC-HS (University of Oulu)"),
        (None, "unrecorded-training-data", "not recorded"),
    ],
)
def test_save_pretrained_writes_the_card(tmp_path, datasets, license_name, phrase):
    model_dir = saved_model(tmp_path / "m", train_datasets=datasets)
    data, text = card_of(model_dir)
    assert data["license"] == ("apache-2.0" if license_name is None else "other")
    assert data.get("license_name") == license_name and phrase in text
    assert data["pipeline_tag"] == "video-classification" and data["library_name"] == "transformers"
    assert "base_model" not in data and "model-index" not in data  # no encoder checkpoint, no results
    assert SLSTT_CITATION in text and f'pipeline("video-classification", model="{model_dir}"' in text
    for name in datasets or []:
        parts = ["casme2", "samm", "smic", "composite"] if name == "composite" else [name]
        assert all(DATASETS[p].citation in text and DATASETS[p].card_text in text for p in [name])
        assert all(DATASETS[p].citation in text for p in parts)
    assert "datasets" not in data  # none of these sets has a Hub id: `datasets:` lists only real ones
    assert "## Limitations" in text and "## Framework versions" in text
    assert all(requirement in text for requirement in PROCESSOR_REQUIREMENTS)


def test_card_names_the_pretrained_encoder_and_keeps_an_existing_card(tmp_path):
    from transformers import ViTConfig, ViTModel

    vit_dir = tmp_path / "vit"
    ViTModel(ViTConfig(image_size=SIZE, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64), add_pooling_layer=False).save_pretrained(vit_dir)
    config = MERConfig.from_preset("tiny", labels=LABELS, train_datasets=["synthetic"])
    model = MERForVideoClassification.from_pretrained_spatial(str(vit_dir), config)
    assert model.config.pretrained_spatial == str(vit_dir)
    model.save_pretrained(tmp_path / "local")
    data, text = card_of(tmp_path / "local")
    assert "base_model" not in data and f"started from `{vit_dir}`" in text  # a local folder is no Hub id
    model.config.pretrained_spatial = "google/vit-base-patch16-224-in21k"
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "README.md").write_text("my own card\n")
    model.save_pretrained(tmp_path / "hub")
    assert (tmp_path / "hub" / "README.md").read_text() == "my own card\n"  # never replaced
    assert model.model_card("you/mer").data.to_dict()["base_model"] == "google/vit-base-patch16-224-in21k"


def test_push_to_hub_uploads_the_card_not_the_stub(tmp_path, monkeypatch):
    uploads = []

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploads.append({"repo_id": repo_id, "files": sorted(os.listdir(folder_path)), "kwargs": kwargs,
                        "card": readme.read_text() if (readme := Path(folder_path) / "README.md").exists() else None})
        return "commit"

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: type("Url", (), {"repo_id": repo_id})())
    monkeypatch.setattr(HfApi, "file_exists", lambda self, repo_id, filename, **kw: False)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    config = MERConfig.from_preset("tiny", labels=LABELS, train_datasets=["samm"])
    assert MERForVideoClassification(config).push_to_hub("you/mer-samm", private=True) == "commit"
    (upload,) = uploads
    assert {"README.md", "config.json", "model.safetensors", "modeling_mer.py"} <= set(upload["files"])
    assert "card_mer.py" not in upload["files"]  # publishing code stays in the package, it does not ship
    card = ModelCard(upload["card"])
    assert card.data.license == "other" and card.data.pipeline_tag == "video-classification"
    assert 'from_pretrained("you/mer-samm", trust_remote_code=True)' in card.text and "tags: []" not in upload["card"]
    # save_pretrained(push_to_hub=True) goes the same way; a README already in the repository is kept
    monkeypatch.setattr(HfApi, "file_exists", lambda self, repo_id, filename, **kw: True)
    MERForVideoClassification(config).save_pretrained(tmp_path / "local", push_to_hub=True, repo_id="you/again")
    assert uploads[-1]["repo_id"] == "you/again" and "README.md" not in uploads[-1]["files"]
    assert (tmp_path / "local" / "README.md").exists()  # the local folder has its card


def test_train_card_has_results_and_the_same_sections(tmp_path):
    from modeling_mer.evaluation.hub_card import render_card

    metrics = {"dataset": "casme2", "protocol": "loso", "protocol_description": "leave-one-subject-out",
               "uf1": 0.5, "uar": 0.25, "accuracy": 0.5, "num_samples": 10, "num_folds": 3, "optimistic": False,
               "note": "fixed epochs", "label_names": LABELS, "per_dataset": {}}
    run = {"model": "tiny", "pretrained_spatial": "google/vit-base-patch16-224-in21k", "epochs": 2,
           "optimizer": "adamw", "lr": 0.001, "batch_size": 4, "augment": True, "seed": 0, "image_size": 32,
           "num_frames": 4, "input_mode": "flow", "flow": "farneback", "encoding": "hsv", "crop": "none",
           "uv_scale": 1.0, "aggregation": "transformer", "hub_model_id": "you/mer-casme2"}
    card = render_card(REPO / "model_card.md", metrics, run, "you/mer-casme2")
    data = card.data.to_dict()
    assert data["license"] == "other" and data["license_name"] == RESEARCH_ONLY_LICENSE
    assert data["base_model"] == "google/vit-base-patch16-224-in21k" and data["pipeline_tag"] == "video-classification"
    (result,) = [r for r in data["model-index"][0]["results"] if r["dataset"]["type"] == "casme2"]
    assert {m["type"]: (m["name"], m["value"]) for m in result["metrics"]} == {"f1": ("UF1", 0.5), "recall": ("UAR", 0.25)}
    assert {m["args"]["average"] for m in result["metrics"]} == {"macro"}
    assert "| loso | casme2 | 0.5000 | 0.2500 |" in card.text and DATASETS["casme2"].citation in card.text
    assert DATASETS["casme2"].card_text in card.text and "`flow=farneback`" in card.text
    assert 'AutoModelForVideoClassification.from_pretrained("you/mer-casme2", trust_remote_code=True)' in card.text


def test_card_metadata_follows_the_hub_rules_offline(tmp_path):
    """The Hub's model-card metadata rules, checked with huggingface_hub offline: the card parses strictly, the
    model-index round-trips to the same EvalResults, metric ids are the Hub's, `datasets:` holds only Hub ids."""
    import transformers
    from huggingface_hub import EvalResult
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from dataset_scripts.registry import DatasetSpec, register_dataset
    from modeling_mer.evaluation.hub_card import recognition_results, render_card

    metrics = {"dataset": "synthetic", "protocol": "loso", "protocol_description": "leave-one-subject-out",
               "uf1": 0.75, "uar": 0.5, "accuracy": 0.5, "num_samples": 10, "num_folds": 3, "optimistic": True,
               "note": "held-out", "label_names": LABELS, "per_dataset": {}}
    run = {"model": "tiny", "epochs": 2, "optimizer": "adamw", "lr": 0.001, "batch_size": 4, "augment": True,
           "seed": 0, "aggregation": "mean", "num_frames": 4}
    card = render_card(REPO / "model_card.md", metrics, run, "you/mer", processor=processor())
    strict = ModelCard(str(card), ignore_metadata_errors=False)  # raises on metadata the Hub would reject
    data = strict.data.to_dict()
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "mer-tiny-synthetic-loso" and results == recognition_results(metrics) and all(isinstance(r, EvalResult) for r in results)
    assert [(r.metric_type, r.metric_name, r.metric_args) for r in results] == [
        ("f1", "UF1 (optimistic: selected on held-out subject)", {"average": "macro"}),
        ("recall", "UAR (optimistic: selected on held-out subject)", {"average": "macro"})]
    assert data["metrics"] == ["f1", "recall"] and data["license"] == "apache-2.0" and "datasets" not in data
    assert "optimistic-selection" in data["tags"] and data["library_name"] == "transformers"
    text = strict.text
    assert re.search(r"^## Limitations$", text, re.M) and re.search(r"^## Framework versions$", text, re.M)
    assert f"- Transformers {transformers.__version__}" in text and f"- PyTorch {torch.__version__}" in text
    assert all(f"`{option}=" in text for option in MERImageProcessor.option_names)  # sampling included
    assert "OPTIMISTIC RESULTS" in text and DATASETS["synthetic"].card_text in text
    # a dataset with a Hub id is the one kind `datasets:` lists, and the model-index names it by that id
    register_dataset(DatasetSpec(name="hubbed", builder="x.y:Z", kind="clips", title="Hubbed", class_sets=("3class",),
                                 license_name="apache-2.0", license_text="Apache-2.0", citation="", card_text="On the Hub.",
                                 hub_id="someone/hubbed-clips", research_only=False))
    try:
        card = render_card(REPO / "model_card.md", {**metrics, "dataset": "hubbed"}, run, "you/mer")
        data = ModelCard(str(card), ignore_metadata_errors=False).data.to_dict()
        assert data["datasets"] == ["someone/hubbed-clips"]
        assert {r["dataset"]["type"] for r in data["model-index"][0]["results"]} == {"someone/hubbed-clips"}
    finally:
        del DATASETS["hubbed"]


def test_the_card_usage_snippets_run(tmp_path, monkeypatch):
    """The card's Python blocks, run as written against a saved folder, print the labels of a clip."""
    model_dir = saved_model(tmp_path / "model", train_datasets=["synthetic"])
    _, text = card_of(model_dir)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    write_video(tmp_path / "clip.mp4", moving_clip(1.0, 0.0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, "card", "exec"), {})
    lines = out.getvalue().strip().splitlines()
    assert {entry["label"] for entry in eval(lines[0])} == set(LABELS)  # the pipeline's top-k list
    assert len(eval(lines[-1])) == 2 and set(eval(lines[-1])) <= set(LABELS)


# --------------------------------------------------------------------------- missing requirements
def test_a_video_without_pyav_names_the_package(tmp_path, monkeypatch):
    video = write_video(tmp_path / "clip.avi", moving_clip(1.0, 0.0))
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now fails as if it were not installed
    with pytest.raises(ImportError, match=r"clip\.avi: reading a video file needs PyAV: pip install av"):
        processor()(video)


REMOTE_PROCESSOR_WITHOUT_OPENCV = """
import sys
from transformers import AutoImageProcessor


class Block:  # neither this package nor OpenCV: only the saved folder's code, as on a fresh machine
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modeling_mer", "dataset_scripts", "cv2"):
            raise ModuleNotFoundError("No module named " + repr(name), name=name)


sys.meta_path.insert(0, Block())
try:
    AutoImageProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
except ImportError as err:
    print("ERROR", err)
"""


@pytest.mark.slow
def test_remote_processor_without_opencv_names_the_packages(tmp_path):
    model_dir = saved_model(tmp_path / "model")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    proc = subprocess.run([sys.executable, "-c", REMOTE_PROCESSOR_WITHOUT_OPENCV, str(model_dir)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert 'ERROR MERImageProcessor needs OpenCV' in proc.stdout
    assert 'pip install "opencv-contrib-python-headless>=4.8" av' in proc.stdout


REMOTE_MODEL_WITHOUT_THE_PACKAGE = """
import sys
from transformers import AutoModelForVideoClassification


class Block:  # only the saved folder's code, as where modeling_mer is not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modeling_mer", "dataset_scripts"):
            raise ModuleNotFoundError("No module named " + repr(name), name=name)


sys.meta_path.insert(0, Block())
model = AutoModelForVideoClassification.from_pretrained(sys.argv[1], trust_remote_code=True)
model.save_pretrained(sys.argv[2])
print("SAVED", type(model).__module__)
try:
    model.model_card("x")
except ImportError as err:
    print("NO CARD", err)
"""


@pytest.mark.slow
def test_a_remote_code_copy_saves_without_the_publishing_code(tmp_path):
    """The card hook is all the shipped files carry: without the package, a copy saves with no card and no error."""
    model_dir = saved_model(tmp_path / "model", train_datasets=["synthetic"])
    assert "card_mer.py" not in {p.name for p in model_dir.iterdir()}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    proc = subprocess.run([sys.executable, "-c", REMOTE_MODEL_WITHOUT_THE_PACKAGE, str(model_dir), str(tmp_path / "again")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "SAVED transformers_modules." in proc.stdout and "NO CARD" in proc.stdout and "pip install modeling-mer" in proc.stdout
    assert (tmp_path / "again" / "config.json").exists() and not (tmp_path / "again" / "README.md").exists()


def test_registration_is_the_installed_package_only():
    """The exported copy of configuration_mer keeps `custom_pipelines`; the installed one drops it on load."""
    from modeling_mer import configuration_mer

    assert "video-classification" in configuration_mer.LOCALLY_REGISTERED_PIPELINES
    source = (REPO / "modeling_mer" / "configuration_mer.py").read_text()
    assert "LOCALLY_REGISTERED_PIPELINES: set[str] = set()" in source  # empty wherever the package is not imported
    assert modeling_mer.MERVideoClassificationPipeline._load_video_processor is False


def test_builders_take_their_texts_from_the_registry():
    """One owner: the builders' citation, licence and description are their registry entry's."""
    from dataset_scripts import CASME2, SAMM, SMIC, MEGC2019Composite

    for name, builder in (("casme2", CASME2), ("samm", SAMM), ("smic", SMIC), ("composite", MEGC2019Composite)):
        spec = DATASETS[name]
        assert (builder.CITATION, builder.LICENSE, builder.DESCRIPTION) == (spec.citation, spec.license_text, spec.card_text)
        assert spec.builder_class() is builder


def test_card_requirements_are_the_package_dependencies():
    import tomllib

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in dependencies}
    for requirement in PROCESSOR_REQUIREMENTS:
        assert re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower() in names, requirement
    for requirement in PROCESSOR_REQUIREMENTS:  # a version bound in the card is the package's own
        assert not re.search(r"[<>=]", requirement) or requirement in dependencies + ["transformers>=5"], requirement
