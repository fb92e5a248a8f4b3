"""mer-demo: the page's analysis (the same prediction as mer-predict), every bad upload answered in one
readable sentence, the command line, and the Hugging Face Space that --write-space writes."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from modeling_mer import MERConfig, MERForVideoClassification
from modeling_mer.cli import demo
from modeling_mer.cli import predict as predict_cli
from modeling_mer.processing_mer import MERImageProcessor

pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed: pip install -e '.[demo]'")

LABELS = ["negative", "positive", "surprise"]
SIZE = 64
# The Space configuration keys Hugging Face documents (https://huggingface.co/docs/hub/spaces-config-reference).
SPACE_KEYS = {
    "title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "python_version", "app_file", "app_port",
    "base_path", "fullWidth", "header", "short_description", "models", "datasets", "tags", "thumbnail", "pinned",
    "hf_oauth", "hf_oauth_scopes", "disable_embedding", "startup_duration_timeout", "custom_headers",
    "preload_from_hub", "license", "suggested_hardware", "suggested_storage",
}


# ------------------------------------------------------------------------------------------- test data
def face_clip(num_frames: int = 24, apex: int = 12, amplitude: float = 2.5) -> list[np.ndarray]:
    """A textured 64x64 cartoon face whose mouth corners rise and fall back (peak at `apex`)."""
    rng = np.random.default_rng(7)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)).astype(np.float32), (0, 0), 1.5)
    base = np.full((SIZE, SIZE, 3), 90, np.uint8)
    cv2.ellipse(base, (32, 33), (21, 27), 0, 0, 360, (224, 180, 150), -1)
    for x in (24, 40):
        cv2.circle(base, (x, 27), 3, (40, 30, 30), -1)
        cv2.line(base, (x - 5, 20), (x + 5, 20), (60, 40, 30), 2)
    cv2.ellipse(base, (32, 46), (9, 3), 0, 0, 360, (150, 60, 60), -1)
    base = np.clip(base + 25 * grain[..., None], 0, 255).astype(np.uint8)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    bump = sum(np.exp(-((xs - cx) ** 2 + (ys - 46) ** 2) / (2 * 4.0**2)) for cx in (23, 41))
    frames = []
    for t in range(num_frames):
        strength = amplitude * max(0.0, 1.0 - abs(t - apex) / 7.0)
        frames.append(cv2.remap(base, xs, ys + strength * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return frames


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """An H.264 mp4 (what a browser plays and uploads), written with PyAV."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def save_tiny_model(folder: Path, crop: str = "none") -> Path:
    """A tiny random MER model with its processor (crop='none': the test clip is already a face)."""
    torch.manual_seed(0)
    config = MERConfig.from_preset("tiny", labels=LABELS)
    MERForVideoClassification(config).save_pretrained(folder)
    MERImageProcessor(image_size=32, num_frames=config.num_frames, crop=crop).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo")
    noise = [np.random.default_rng(i).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8) for i in range(12)]
    text = root / "notes.mp4"
    text.write_text("this is not a video\n")
    Image.fromarray(face_clip()[0]).save(root / "face.png")
    return {
        "root": root,
        "model": save_tiny_model(root / "model"),
        "clip": write_mp4(root / "clip.mp4", face_clip()),
        "long": write_mp4(root / "long.mp4", face_clip(num_frames=100), fps=25),  # 4 s
        "noise": write_mp4(root / "noise.mp4", noise),
        "text": text,
        "image": root / "face.png",
    }


@pytest.fixture(scope="module")
def analyser(files) -> demo.Analyser:
    return demo.Analyser(str(files["model"]))


def assert_readable(message: str, *forbidden: str) -> None:
    """One readable paragraph: no traceback, no Python internals, no server paths."""
    assert message.startswith("**Cannot analyse this upload:**"), message
    assert "Traceback" not in message and 'File "' not in message and "\n" not in message, message
    for text in forbidden:
        assert text not in message, message


# ------------------------------------------------------------------------------------------ the analysis
def test_page_shows_what_mer_predict_gives(files, analyser, capsys):
    result = analyser.analyse(str(files["clip"]))
    assert result.ok, result.message
    assert list(result.probabilities) == LABELS
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-9)
    label = max(result.probabilities, key=result.probabilities.get)
    assert result.message.startswith(f"**{label}** (p = {result.probabilities[label]:.2f})")
    assert "apex 12 (estimated)" not in result.message or result.details["apex_estimated"]
    # the explanation figure is mer-predict's four-panel figure (14 x 3.8 in at 100 dpi)
    assert result.figure.size == (1400, 380)
    pixels = np.asarray(result.figure)
    assert pixels.std() > 10  # drawn, not blank
    # the same numbers as the command line on the same file
    code = predict_cli.main([str(files["clip"]), "--model", str(files["model"]), "--json"])
    cli = json.loads(capsys.readouterr().out)
    assert code == 0
    assert cli["probabilities"] == pytest.approx(result.probabilities, abs=1e-6)  # sdpa vs eager attention
    assert cli["label"] == label and cli["apex"] == result.details["apex"]


def test_annotated_frames_are_used(files, analyser):
    result = analyser.analyse(str(files["clip"]), "4", "12", "20")
    assert result.ok, result.message
    assert (result.details["onset"], result.details["apex"], result.details["offset"]) == (4, 12, 20)
    assert result.details["apex_estimated"] is False
    assert "apex 12 (given)" in result.message
    empty = analyser.analyse(str(files["clip"]), "", " ", None)  # Gradio sends empty boxes as ""
    assert empty.ok and empty.details["apex_estimated"] is True


@pytest.mark.parametrize(
    "case, inputs, expected",
    [
        ("nothing", (None,), "no video yet"),
        ("text file", ("text",), "notes.mp4 is not a video file that FFmpeg can read"),
        ("one image", ("image",), "face.png holds 1 frame(s): a micro-expression is motion"),
        ("offset before onset", ("clip", "10", None, "5"), "offset (5) must come after onset (10)"),
        ("apex outside", ("clip", "4", "30", "20"), "apex (30) must lie between onset and offset"),
        ("past the end", ("clip", "4", None, "99"), "offset (99) is past the video's last frame (23)"),
        ("not a number", ("clip", "four"), "onset must be a frame number, got 'four'"),
        ("negative", ("clip", "-3"), "onset must be a whole frame number of 0 or more, got -3"),
        ("fraction", ("clip", None, "2.5"), "apex must be a whole frame number of 0 or more, got 2.5"),
    ],
)
def test_bad_uploads_get_one_sentence(files, analyser, case, inputs, expected):
    video = None if inputs[0] is None else str(files[inputs[0]])
    result = analyser.analyse(video, *inputs[1:])
    assert not result.ok and result.figure is None and result.probabilities is None
    assert expected in result.message, result.message
    assert_readable(result.message, str(files["root"]))


def test_too_long_is_refused_before_decoding(files, monkeypatch):
    decoded = []
    monkeypatch.setattr(predict_cli, "load_clip", lambda *a, **k: decoded.append(a))
    short = demo.Analyser(str(files["model"]), max_seconds=2.0)
    result = short.analyse(str(files["long"]))
    assert "long.mp4 lasts more than 2 s, the longest video this demo takes" in result.message
    assert_readable(result.message)
    few = demo.Analyser(str(files["model"]), max_frames=50)
    assert "long.mp4 has more than 50 frames; this demo recognises clips of at most 50" in few.analyse(str(files["long"])).message
    assert "offset (60): this demo decodes at most 50 frames" in few.analyse(str(files["long"]), "40", None, "60").message
    assert decoded == []


def test_a_clip_early_in_a_longer_video(files):
    few = demo.Analyser(str(files["model"]), max_frames=50)  # 100 frames, but only 31 are decoded
    result = few.analyse(str(files["long"]), "10", None, "30")
    assert result.ok and (result.details["onset"], result.details["offset"]) == (10, 30)


def test_no_face_is_a_sentence_naming_the_file(files):
    haar = demo.Analyser(str(files["model"]), overrides={"crop": "haar"})
    result = haar.analyse(str(files["noise"]))
    assert not result.ok
    assert "noise.mp4" in result.message and "face" in result.message.lower()
    assert_readable(result.message, str(files["root"]))
    full = demo.Analyser(str(files["model"]), overrides={"crop": "haar", "on_no_face": "full_frame"})
    with pytest.warns(UserWarning, match="no face found"):
        assert "NO FACE FOUND" in full.analyse(str(files["noise"])).message


def test_a_bug_stays_in_the_log(files, analyser, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("index 7 is out of bounds for dimension 0 with size 3")

    monkeypatch.setattr(predict_cli, "predict", broken)
    result = analyser.analyse(str(files["clip"]))
    assert result.message == "**Something went wrong on the server** (RuntimeError); the details are in its log."
    assert "Traceback" in caplog.text and "out of bounds" in caplog.text


def test_probe_counts_frames_and_seconds(files):
    info = demo.probe_video(files["clip"])
    assert info.frames == 24 and info.fps == pytest.approx(25.0) and info.seconds == pytest.approx(0.96)


# --------------------------------------------------------------------------------------------- the page
def test_page_layout(files, analyser):
    import gradio as gr

    app = demo.build_app(analyser, "My demo")
    config = app.get_config_file()
    kinds = {c["props"].get("elem_id"): c["type"] for c in config["components"] if c["props"].get("elem_id")}
    assert kinds == {
        "mer-video": "video", "mer-onset": "textbox", "mer-apex": "textbox", "mer-offset": "textbox",
        "mer-analyse": "button", "mer-status": "markdown", "mer-label": "label", "mer-figure": "image",
    }
    video = next(c for c in config["components"] if c["props"].get("elem_id") == "mer-video")
    assert video["props"]["sources"] == ["upload", "webcam"]
    assert isinstance(app, gr.Blocks) and app.title == "My demo"


def test_spotter_needs_the_spotting_model(files, monkeypatch):
    real = demo.importlib.util.find_spec
    monkeypatch.setattr(
        demo.importlib.util, "find_spec", lambda name, *a: None if name == "modeling_mer.cli.spot" else real(name, *a)
    )
    with pytest.raises(demo.DemoError, match="no spotting model"):
        demo.Analyser(str(files["model"]), spotter_id=str(files["model"]))


# ------------------------------------------------------------------------------------- with a spotter
@pytest.fixture(scope="module")
def spotting(files):
    """An untrained tiny spotting model with low thresholds (so that it finds intervals) and a long
    generated recording (5 s at 30 fps, 96x72) with micro- and macro-expressions, blinks and head motion."""
    pytest.importorskip("modeling_mer.cli.spot", reason="mer-predict's long-video path (modeling_mer/cli/spot.py) is not here")
    from modeling_mer import MERForExpressionSpotting, MERSpottingConfig, MERSpottingProcessor
    from modeling_mer.training.spotting_synthetic import make_long_video

    root = files["root"] / "spotting"
    torch.manual_seed(0)
    config = MERSpottingConfig.from_preset("tiny", micro_threshold=0.05, macro_threshold=0.05)
    MERForExpressionSpotting(config).save_pretrained(root / "spotter")
    MERSpottingProcessor(crop="none").save_pretrained(root / "spotter")
    video = make_long_video(77, num_frames=150, width=96, height=72)
    path = root / "long.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=30)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuvj420p"
        for _, frame in video.frames():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return {"spotter": root / "spotter", "video": path, "analyser": demo.Analyser(str(files["model"]), str(root / "spotter"))}


def test_spotter_names_every_interval_and_explains_the_strongest(spotting):
    from modeling_mer.cli.spot import load_spotter, spot_video

    result = spotting["analyser"].analyse(str(spotting["video"]))
    expected = spot_video(str(spotting["video"]), *load_spotter(str(spotting["spotter"])))["intervals"]
    assert len(expected) >= 2
    table = result.intervals
    assert list(table.columns) == demo.INTERVAL_COLUMNS
    assert table[["type", "onset", "apex", "offset"]].to_dict("records") == [
        {k: r[k] for k in ("type", "onset", "apex", "offset")} for r in expected
    ]
    assert set(table["emotion"]) <= set(LABELS) and ((table["p"] > 0) & (table["p"] < 1)).all()
    top = table.iloc[int(np.argmax([r["score"] for r in expected]))]
    assert result.ok and result.message.startswith(f"**{top['emotion']}** (p = ")
    assert f"in the strongest spotted interval: {top['type']}, frames {top['onset']}..{top['offset']}" in result.message
    assert f"spotting: {len(expected)} interval(s) found" in result.message
    assert result.figure.size == (1400, 380) and np.asarray(result.timeline).std() > 10


def test_spotter_with_a_given_clip(spotting):
    result = spotting["analyser"].analyse(str(spotting["video"]), "10", None, "40")
    assert result.ok and "clip frames 10..40" in result.message and "spotting: " in result.message
    assert len(result.intervals) >= 2 and result.timeline is not None


def test_spotter_page_layout(spotting):
    config = demo.build_app(spotting["analyser"]).get_config_file()
    ids = {c["props"].get("elem_id"): c["type"] for c in config["components"] if c["props"].get("elem_id")}
    assert ids["mer-timeline"] == "image" and ids["mer-intervals"] == "dataframe"


# ---------------------------------------------------------------------------------------- command line
def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = demo.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_without_gradio_one_line(files, capsys, monkeypatch):
    real = demo.importlib.util.find_spec
    monkeypatch.setattr(demo.importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    code, out, err = run_main(capsys, "--model", files["model"])
    assert code == 1 and out == ""
    assert err == "error: mer-demo needs gradio, which is not installed: pip install modeling-mer[demo]\n"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--port", "0"], "--port: must be at least 1, got 0"),
        (["--port", "70000"], "--port: a TCP port is 1..65535, got 70000"),
        (["--max_seconds", "0"], "--max_seconds/--max-seconds: must be above 0, got 0"),
        (["--max-frames", "x"], "--max_frames/--max-frames: 'x' is not a whole number"),
    ],
)
def test_bad_arguments(capsys, argv, expected):
    with pytest.raises(SystemExit) as stop:
        demo.main(["--model", "m", *argv])
    assert stop.value.code == 2
    assert expected in capsys.readouterr().err


def test_bad_model_is_one_line(tmp_path, capsys):
    code, _, err = run_main(capsys, "--model", tmp_path / "missing")
    assert code == 1 and err.count("\n") == 1 and err.startswith(f"error: --model {tmp_path / 'missing'}: no such model folder")


# ------------------------------------------------------------------------------------ Hugging Face Space
def space_metadata(folder: Path) -> dict:
    from huggingface_hub import SpaceCard

    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    raw = yaml.safe_load(text.split("---\n")[1])
    card = SpaceCard.load(folder / "README.md")
    assert card.data.to_dict() == raw
    return raw


def test_write_space_for_a_hub_model(tmp_path, capsys):
    space = tmp_path / "space"
    code, out, err = run_main(capsys, "--write-space", space, "--model", "someone/mer-casme2", "--title", "MER")
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"wrote a Hugging Face Space to {space}")
    meta = space_metadata(space)
    assert set(meta) <= SPACE_KEYS, set(meta) - SPACE_KEYS
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == metadata.version("gradio")
    assert meta["app_file"] == "app.py" and (space / meta["app_file"]).is_file()
    assert meta["colorFrom"] in demo.SPACE_COLORS and meta["colorTo"] in demo.SPACE_COLORS
    assert len(meta["short_description"]) <= 60 and meta["title"] == "MER"
    assert meta["license"] == "apache-2.0" and meta["models"] == ["someone/mer-casme2"]
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    app = (space / "app.py").read_text()
    compile(app, "app.py", "exec")
    assert "os.environ.get(\"MER_MODEL\", 'someone/mer-casme2')" in app
    requirements = [line for line in (space / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    names = {line.split(">")[0].split("=")[0].split("<")[0].strip().lower() for line in requirements}
    assert {"torch", "transformers", "av", "huggingface-hub"} <= names and "gradio" not in names
    assert (space / "modeling_mer" / "cli" / "demo.py").read_text() == Path(demo.__file__).read_text()
    assert not list(space.rglob("__pycache__")) and not (space / "model").exists()


def test_write_space_refuses(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, _, err = run_main(capsys, "--write-space", tmp_path / "full", "--model", "a/b")
    assert code == 1 and "exists and is not an empty folder" in err and err.count("\n") == 1
    code, _, err = run_main(capsys, "--write-space", tmp_path / "new", "--model", "not a repo id!")
    assert code == 1 and "neither a folder here nor a Hub repo id" in err
    assert not (tmp_path / "new").exists()
    code, _, err = run_main(capsys, "--write-space", tmp_path / "new", "--model", tmp_path / "full")
    assert code == 1 and "config.json missing" in err and not (tmp_path / "new").exists()


def test_write_space_copies_a_local_model(files, tmp_path):
    """A local model travels inside the Space (model/); app.py serves that copy. That the written Space
    runs and answers in a browser is tests/test_demo_browser.py's."""
    space = tmp_path / "space"
    written = demo.write_space(space, str(files["model"]))
    assert sorted(p.name for p in (space / "model").iterdir()) == sorted(p.name for p in files["model"].iterdir())
    assert space / "app.py" in written and space / "model" / "model.safetensors" in written
    assert "os.environ.get(\"MER_MODEL\", 'model')" in (space / "app.py").read_text()
    assert space_metadata(space).get("models") is None  # no Hub model to link
    with_spotter = tmp_path / "with-spotter"
    demo.write_space(with_spotter, "someone/recogniser", spotter_id=str(files["model"]))
    app = (with_spotter / "app.py").read_text()
    assert "os.environ.get(\"MER_MODEL\", 'someone/recogniser')" in app and "os.environ.get(\"MER_SPOTTER\", 'spotter')" in app
    assert (with_spotter / "spotter" / "config.json").is_file() and not (with_spotter / "model").exists()
    assert space_metadata(with_spotter)["models"] == ["someone/recogniser"]
