"""Issue 21, cases 6-8: video is streamed (memory bounded by the frames used), rotation is applied.

The 10,000-frame video is written by copying one encoded P-frame 9,999 times after a key frame, so a
320x240 file of that length costs a fraction of a second to make; peak memory is the `ru_maxrss` of a
`mer-predict` process measured inside that process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from modeling_mer import MERConfig, MERForVideoClassification
from modeling_mer.cli.predict import main
from modeling_mer.processing_mer import MERImageProcessor
from modeling_mer.video_io import VideoError, load_clip, open_frames, open_video

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 320, 240


def long_video(path: Path, num_frames: int, width: int = WIDTH, height: int = HEIGHT, rotation: int = 0) -> Path:
    """`num_frames` frames of one random texture (mpeg4): one key frame, then one P-frame repeated.

    `rotation` is the clockwise display turn written to the display matrix (a phone's portrait: 90). A
    .ts path gives an MPEG-TS stream, whose container states no frame count."""
    texture = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mpegts" if path.suffix == ".ts" else None) as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 1_000_000
        if rotation:
            stream.set_display_rotation(-rotation)  # PyAV's argument is counter-clockwise
        packets = []
        for pts in range(2):
            frame = av.VideoFrame.from_ndarray(texture, format="rgb24")
            frame.pts = pts
            packets += list(stream.encode(frame))
        packets += list(stream.encode())
        key, repeat, time_base = bytes(packets[0]), bytes(packets[-1]), packets[0].time_base
        for i in range(num_frames):
            packet = av.Packet(key if i == 0 else repeat)
            packet.pts = packet.dts = i
            packet.time_base, packet.stream, packet.is_keyframe = time_base, stream, i == 0
            container.mux(packet)
    return path


def strip_video(path: Path, rotation: int, num_frames: int = 4) -> Path:
    """64x48 (WxH) frames, black with a white band on the LEFT edge, with a display rotation."""
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :12] = 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(-rotation)
        for _ in range(num_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("robust_model")
    torch.manual_seed(0)
    config = MERConfig.from_preset("tiny", labels=["negative", "positive", "surprise"])
    MERForVideoClassification(config).save_pretrained(folder)
    MERImageProcessor(image_size=32, num_frames=config.num_frames, crop="none", spot_size=16).save_pretrained(folder)
    return folder


def predict_peak(capsys, *argv: str) -> tuple[int, str, str, float]:
    """mer-predict in this process under tracemalloc (numpy's frame buffers are traced):
    (exit code, stdout, stderr without notes, peak traced MiB)."""
    tracemalloc.start()
    try:
        code = main([str(a) for a in argv])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    captured = capsys.readouterr()
    err = "\n".join(line for line in captured.err.splitlines() if not line.startswith("note:"))
    return code, captured.out, err, peak / 2**20


def predict_rss(*argv: str) -> tuple[int, str, str, float]:
    """mer-predict in a fresh process: (exit code, stdout, stderr, that process's peak RSS in MiB)."""
    code = (
        "import resource, sys\n"
        "from modeling_mer.cli.predict import main\n"
        "code = main(sys.argv[1:])\n"
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=240)
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_KB")]
    assert peak, done.stderr[-2000:]
    err = "\n".join(line for line in done.stderr.splitlines() if not line.startswith(("PEAK_KB", "note:")))
    return done.returncode, done.stdout, err, int(peak[0].split()[1]) / 1024


# ------------------------------------------------------------------------------------------ the reader
def test_stream_yields_indices_drops_frames_before_start_and_names_bad_files(tmp_path):
    path = long_video(tmp_path / "v.mp4", 300, 64, 48)
    with open_video(path) as video:
        assert (video.width, video.height, video.num_frames, video.rotation, video.fps) == (64, 48, 300, 0, 25.0)
        got = [(i, f.shape, f.dtype) for i, f in video.frames(290, 295)]
        assert got == [(i, (48, 64, 3), np.uint8) for i in range(290, 295)]
        assert video.decoded == 295  # decoded up to the stop, the first 290 dropped
        assert [i for i, _ in video.frames(298)] == [298, 299]
    clip = load_clip(path, last_frame=250, first_frame=240)
    assert clip.frame_numbers == list(range(240, 251)) and len(clip) == 11
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(64))
    with pytest.raises(VideoError) as err:
        open_video(broken)
    assert str(broken) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(VideoError, match="onset=400 is not a frame of the clip \\(frame numbers 0..299\\)"):
        load_clip(path, last_frame=410, first_frame=400)


def test_frame_sequence_streams_like_a_video(tmp_path):
    from PIL import Image

    files = []
    for i in range(5):
        files.append(tmp_path / f"img{i}.png")
        Image.fromarray(np.full((6, 8, 3), i * 40, np.uint8)).save(files[-1])
    with open_frames(files, fps=200) as frames:
        assert (frames.width, frames.height, frames.num_frames, frames.fps) == (8, 6, 5, 200.0)
        assert [(i, int(f[0, 0, 0])) for i, f in frames.frames(2, 4)] == [(2, 80), (3, 120)]
    files[3].write_bytes(files[3].read_bytes()[:30])  # truncated
    with pytest.raises(VideoError, match="img3.png"):
        list(open_frames(files).frames())


# ---------------------------------------------------------------------------- case 8: display rotation
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_case8_display_matrix_rotation_is_applied(tmp_path, rotation):
    path = strip_video(tmp_path / f"phone{rotation}.mp4", rotation)
    with open_video(path) as video:
        assert video.rotation == rotation
        assert (video.width, video.height) == ((48, 64) if rotation in (90, 270) else (64, 48))
        _, frame = next(video.frames())
    assert frame.shape == (video.height, video.width, 3)
    # the band on the encoded frame's left edge, turned clockwise by `rotation`
    band = {90: frame[:8], 180: frame[:, -8:], 270: frame[-8:]}[rotation]
    rest = {90: frame[-20:], 180: frame[:, :30], 270: frame[:20]}[rotation]
    assert band.mean() > 200 and rest.mean() < 40


def test_case8_predict_reads_a_phone_recording_upright(tmp_path, model, capsys):
    path = strip_video(tmp_path / "phone.mp4", 90, num_frames=12)
    code, out, err, _ = predict_peak(capsys, str(path), "--model", str(model), "--json")
    assert code == 0, err
    assert json.loads(out)["crop_box"] == [0, 0, 48, 64]  # crop="none": the whole upright (portrait) frame


# ------------------------------------------------------------------------- cases 6-7: bounded memory
@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("long_videos")
    return {"short": long_video(root / "short.mp4", 100), "long": long_video(root / "long.mp4", 10_000)}


def check_bounded(peak, videos, model, capsys) -> None:
    """10,000 frames of 320x240 (2.2 GiB decoded): with --onset/--offset within 1.5x of a 100-frame clip's
    peak; without bounds refused in one line naming the option, before anything is decoded."""
    code, out, err, short = peak(*capsys, str(videos["short"]), "--model", str(model), "--json", "--onset", "0", "--offset", "99")
    assert code == 0, err
    assert (json.loads(out)["onset"], json.loads(out)["offset"]) == (0, 99)
    code, out, err, bounded = peak(
        *capsys, str(videos["long"]), "--model", str(model), "--json", "--onset", "9900", "--offset", "9950"
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["onset"], result["offset"]) == (9900, 9950)
    assert bounded < 1.5 * short, (bounded, short)
    code, out, err, unbounded = peak(*capsys, str(videos["long"]), "--model", str(model))
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert "10,000 frames" in err and "--onset" in err and "--offset" in err and str(videos["long"]) in err
    assert unbounded < 1.5 * short, (unbounded, short)
    # only an onset: the rest of the file (100 frames, within the budget) is read, the clip found in it
    code, out, err, tail = peak(*capsys, str(videos["long"]), "--model", str(model), "--json", "--onset", "9900")
    assert code == 0, err
    assert 9900 <= json.loads(out)["onset"] < json.loads(out)["offset"] <= 9999
    assert tail < 1.5 * short, (tail, short)
    return short, bounded, unbounded


def test_case6_7_peak_memory_of_predict_does_not_grow_with_the_video(videos, model, capsys):
    short, bounded, unbounded = check_bounded(predict_peak, videos, model, (capsys,))
    assert short > 100 * WIDTH * HEIGHT * 3 / 2**20  # the 100 decoded frames are in what was measured


@pytest.mark.slow
def test_case6_7_peak_rss_of_a_predict_process(videos, model):
    """The same with the peak RSS of separate mer-predict processes (torch's memory included)."""
    check_bounded(predict_rss, videos, model, ())


def test_case6_unbounded_file_without_a_stated_length_is_refused_at_the_budget(tmp_path):
    """A stream whose container states no frame count (MPEG-TS) is refused once the budget is reached."""
    target = long_video(tmp_path / "v.ts", 400, 64, 48)
    with open_video(target) as video:
        assert video.num_frames is None
    budget = 100 * 64 * 48 * 3  # 100 frames
    with pytest.raises(VideoError, match="more frames than that.*--onset N --offset M"):
        load_clip(target, budget_bytes=budget)
    assert len(load_clip(target, last_frame=150, budget_bytes=budget)) == 151  # bounded: no budget applies


def test_ctrl_c_in_predict_is_one_line_and_status_130(tmp_path, model, capsys, monkeypatch):
    import modeling_mer.cli.predict as predict

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(predict, "load_clip", interrupted)
    code = predict.main([str(strip_video(tmp_path / "v.mp4", 0)), "--model", str(model)])
    captured = capsys.readouterr()
    assert code == 130 and captured.out == "" and captured.err.strip() == "interrupted (Ctrl-C): no prediction made"
