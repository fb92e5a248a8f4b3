"""The face crop on real footage: where each rule puts the box, and what a detection costs.

    python bench/face_crop.py [--json bench/results/face_crop_cpu.json]

1. Ten 40-frame H.264 clips (512x512, crf 23) of scikit-image's astronaut portrait: five local warps
   (brows, smile, lip press, nose, cheeks) at two amplitudes (1 and 2.5 px at frame 20), sub-pixel drift
   and sensor noise. On each clip's onset and apex frames: the old rule (the largest Haar detection
   after histogram equalisation at 320 px), the Haar cascade by confidence, dlib's box and dlib's
   landmark crop. A box is on the face when its centre lies within a quarter of the face's width of
   the centre of the hand-measured face (x 183..270, y 70..179; see tests/test_face_crop.py).
2. Milliseconds per clip to find the face (one frame, single thread) on frames the size of CASME II,
   SMIC-HS and SAMM's, with the astronaut scaled to those datasets' face sizes.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model_name, now_iso, write_json  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_mer import face_landmarks  # noqa: E402
from modeling_mer.face_crop import cascade_path, locate_face  # noqa: E402
from modeling_mer.video_io import load_clip  # noqa: E402

FACE = (183, 70, 87, 109)  # the hand-measured face of the astronaut, x, y, w, h
WARPS = {"brows": [(224, 90)], "smile": [(205, 146), (243, 146)], "lip press": [(224, 152)],
         "nose": [(224, 118)], "cheeks": [(200, 132), (250, 132)]}
APEX, FRAMES = 20, 40
SIZES = {"CASME II 640x480, face 280 px": (640, 480, 280), "SMIC-HS 640x480, face 190 px": (640, 480, 190),
         "SAMM 2040x1088, face 400 px": (2040, 1088, 400)}


def render(path: Path, image: np.ndarray, centres: list[tuple[int, int]], amplitude: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    bump = sum(np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 12.0**2)) for cx, cy in centres)
    noise = np.round(rng.normal(0, 2.0, (4, *image.shape))).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for t in range(FRAMES):
            lift = amplitude * max(0.0, 1.0 - abs(t - APEX) / 10)
            dx, dy = 0.4 * math.sin(t / 6), 0.4 * math.cos(t / 8)
            frame = cv2.remap(image, xs - dx, ys - dy + lift * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            frame = np.clip(frame + noise[t % 4], 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@functools.cache
def _old_cascade() -> cv2.CascadeClassifier:
    return cv2.CascadeClassifier(str(cascade_path()))


def old_rule(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """The crop rule before issue 11: the largest Haar detection, equalised, at 320 px."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, 320 / max(gray.shape))
    gray = cv2.equalizeHist(cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    side = max(20, min(gray.shape) // 5)
    faces = _old_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    return tuple(int(round(c / scale)) for c in (x, y, w, h))  # type: ignore[return-value]


def on_face(box) -> bool:
    if box is None:
        return False
    x, y, w, h = box
    fx, fy, fw, fh = FACE
    return abs(x + w / 2 - (fx + fw / 2)) <= fw / 4 and abs(y + h / 2 - (fy + fh / 2)) <= fw / 4


def placement(astronaut: np.ndarray, folder: Path) -> dict:
    crops = ["haar", "dlib-box"] + (["dlib-landmarks"] if face_landmarks.landmarks_available() else [])
    rows = []
    seed = 0
    for name, centres in WARPS.items():
        for amplitude in (1.0, 2.5):
            clip = load_clip(str(render(folder / f"{name}_{amplitude}.mp4", astronaut, centres, amplitude, seed)))
            seed += 1
            row = {"clip": f"{name}, {amplitude} px"}
            for frame_name, index in (("onset", 0), ("apex", APEX)):
                row[f"old rule, {frame_name}"] = old_rule(clip[index])
                for crop in crops:
                    row[f"{crop}, {frame_name}"] = list(locate_face(clip[index], crop, 0.1, "error", "bench").box)
            rows.append(row)
    keys = [k for k in rows[0] if k != "clip"]
    return {"clips": rows, "on_face": {k: sum(on_face(r[k]) for r in rows) for k in keys}, "of": len(rows)}


def scaled(astronaut: np.ndarray, width: int, height: int, face: int) -> np.ndarray:
    """The astronaut scaled so her face is `face` px wide, its centre at the frame's centre, on gray."""
    s = face / FACE[2]
    image = cv2.resize(astronaut, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    fx, fy = int((FACE[0] + FACE[2] / 2) * s), int((FACE[1] + FACE[3] / 2) * s)
    canvas = np.full((height, width, 3), 120, np.uint8)
    x0, y0 = max(0, fx - width // 2), max(0, fy - height // 2)
    part = image[y0 : y0 + height, x0 : x0 + width]
    dx, dy = width // 2 - (fx - x0), height // 2 - (fy - y0)
    part = part[: height - dy, : width - dx]
    canvas[dy : dy + part.shape[0], dx : dx + part.shape[1]] = part
    return canvas


def cost(astronaut: np.ndarray, repeats: int) -> dict:
    cv2.setNumThreads(1)
    crops = ["haar", "dlib-box"] + (["dlib-landmarks"] if face_landmarks.landmarks_available() else [])
    out = {}
    for name, (width, height, face) in SIZES.items():
        frame = scaled(astronaut, width, height, face)
        row = {}
        for crop in crops:
            locate_face(frame, crop, 0.1, "error", "bench")  # warm-up (loads the landmark model once)
            start = time.perf_counter()
            for _ in range(repeats):
                found = locate_face(frame, crop, 0.1, "error", "bench")
            row[crop] = {"ms": round((time.perf_counter() - start) / repeats * 1000, 1), "box": list(found.box),
                         "score": round(found.score, 3)}
        start = time.perf_counter()
        for _ in range(repeats):
            old_rule(frame)
        row["old rule"] = {"ms": round((time.perf_counter() - start) / repeats * 1000, 1)}
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from skimage import data  # the dev extra

    astronaut = data.astronaut()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        placed = placement(astronaut, Path(folder))
    timing = cost(astronaut, args.repeats)
    for key, count in placed["on_face"].items():
        print(f"{key:28s} on the face in {count} of {placed['of']} clips")
    for name, row in timing.items():
        print(name, " | ".join(f"{k} {v['ms']} ms" for k, v in row.items()))
    if args.json:
        write_json(args.json, {
            "date": now_iso(), "machine": {"cpu": cpu_model_name(), "load_average_1m_at_start": round(load, 2)},
            "command": "python bench/face_crop.py " + " ".join(sys.argv[1:]),
            "placement": placed, "ms_per_clip_single_thread": timing,
        })


if __name__ == "__main__":
    main()
