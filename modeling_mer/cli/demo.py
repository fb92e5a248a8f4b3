"""A browser demo: upload or record a video, see the emotion, where the model looked and, with a spotter,
the micro-expressions found in a longer recording.

    mer-demo --model PATH_OR_HUB_ID [--spotter PATH_OR_HUB_ID] [--port N] [--host H] [--share]
    mer-demo --write-space DIR --model HUB_ID_OR_PATH        # a ready Hugging Face Space (Gradio)

The page (Gradio, the `demo` extra: `pip install modeling-mer[demo]`) takes a video file or a webcam
recording and optional onset / apex / offset frame numbers, and shows on one page: the recognised
emotion with the probability of every class, the explanation figure of `mer-predict --explain` (the apex
face, the attention rollout over it, the flow image, the weight of each sampled frame) and, with
`--spotter`, the timeline of the spotted intervals with one table row per interval. Prediction is
mer-predict's own (`modeling_mer.cli.predict`), not a copy of it.

A bad upload (not a video, a single image, no face, too long, onset after offset) is answered in the
page with one readable sentence; an unexpected failure says so in one line and leaves the traceback in
the server's log, never on the page. The server listens on 127.0.0.1 unless told otherwise: the page
shows faces. Uploads and results live in Gradio's cache, which is emptied of files older than an hour.

Nothing heavy is imported before the arguments are read: gradio, torch and the model load afterwards.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_HINT = "pip install modeling-mer[demo]"
DEFAULT_PORT = 7860
MAX_SECONDS = 60.0  # uploads longer than this are refused before decoding (recognition needs < 1 s of video)
MAX_SPOT_SECONDS = 600.0  # the same with --spotter, which streams a long recording (memory bounded by its window)
MAX_FRAMES = 1800  # a whole clip is decoded into memory for recognition: 1800 VGA frames ~ 1.6 GB
SPACE_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
SPACE_MODEL_DIR = "model"  # where --write-space copies a local model
SPACE_SPOTTER_DIR = "spotter"
logger = logging.getLogger("mer-demo")


class DemoError(ValueError):
    """A bad upload or a bad command line: shown as one sentence (page) or one line (console)."""


# ---------------------------------------------------------------------------------------- command line
def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1..65535, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mer-demo",
        description="Serve a browser demo of a micro-expression model (Gradio), or write it as a Hugging Face Space.",
    )
    parser.add_argument("--model", required=True, help="saved MERForVideoClassification folder or Hub id")
    parser.add_argument(
        "--spotter", default=None,
        help="a spotting model (folder or Hub id): the page then also shows the spotted intervals",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default: {DEFAULT_PORT})")
    parser.add_argument(
        "--share", action="store_true",
        help="also open a public link through Gradio's share servers (anyone with the link sees the page)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--max_seconds", "--max-seconds", type=_positive_float, default=None,
        help=f"refuse uploads longer than this (default: {MAX_SECONDS:g} s; with --spotter {MAX_SPOT_SECONDS:g} s)",
    )
    parser.add_argument(
        "--max_frames", "--max-frames", type=_positive_int, default=MAX_FRAMES,
        help=f"the most frames decoded for recognition: the whole video, or up to --offset (default: {MAX_FRAMES})",
    )
    parser.add_argument(
        "--on_no_face", "--on-no-face", choices=["error", "full_frame"], default=None,
        help="no face found: say so (error, the default of the saved processor) or use the whole frame",
    )
    parser.add_argument(
        "--write_space", "--write-space", metavar="DIR", default=None,
        help="write a Hugging Face Space (app.py, requirements.txt, README.md, the package) for --model to DIR "
        "and exit",
    )
    parser.add_argument("--title", default=None, help="the page's (and the Space's) title")
    return parser


# ------------------------------------------------------------------------------------------- the upload
@dataclass
class VideoInfo:
    frames: int
    seconds: float | None
    fps: float | None


def probe_video(path: str | Path, max_seconds: float = MAX_SECONDS, max_frames: int | None = MAX_FRAMES) -> VideoInfo:
    """Count the frames of an upload without decoding them (packets only, stopping at the first limit
    passed); refuse what is not a video, is longer than `max_seconds` or has more than `max_frames` frames."""
    import av

    name = Path(path).name
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError):
        raise DemoError(f"{name} is not a video file that FFmpeg can read; upload a video (mp4, webm, avi, mov, ...)") from None
    with container:
        if not container.streams.video:
            raise DemoError(f"{name} has no video stream (an audio file?); upload a video")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        frames, first, last = 0, None, None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the flush packet at the end
                    continue
                frames += 1
                if packet.pts is not None and packet.time_base is not None:
                    t = float(packet.pts * packet.time_base)
                    first = t if first is None else min(first, t)
                    last = t if last is None else max(last, t)
                if max_frames is not None and frames > max_frames:
                    raise DemoError(
                        f"{name} has more than {max_frames} frames; this demo recognises clips of at most {max_frames} "
                        f"frames: cut the part with the expression first, or give onset and offset"
                    )
                seconds = (last - first) if first is not None else (frames / fps if fps else 0.0)
                if seconds > max_seconds:
                    raise DemoError(
                        f"{name} lasts more than {max_seconds:g} s, the longest video this demo takes: cut the part "
                        "with the expression first (a micro-expression lasts under half a second)"
                    )
        except av.FFmpegError:
            raise DemoError(f"{name} is damaged: FFmpeg cannot read its frames") from None
    seconds = None
    if first is not None and last is not None:
        seconds = last - first + (1.0 / fps if fps else 0.0)
    elif fps:
        seconds = frames / fps
    if seconds is not None and seconds > max_seconds:
        raise DemoError(
            f"{name} lasts {seconds:.1f} s, longer than the {max_seconds:g} s this demo takes: cut the part with "
            "the expression first (a micro-expression lasts under half a second)"
        )
    if frames < 2:
        raise DemoError(f"{name} holds {frames} frame(s): a micro-expression is motion, upload a video of at least 2 frames")
    return VideoInfo(frames=frames, seconds=seconds, fps=fps)


def _frame_number(value: Any, name: str) -> int | None:
    """A Gradio number box: empty -> None, else a whole, non-negative frame number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DemoError(f"{name} must be a frame number, got {value!r}") from None
    if number != number or number < 0 or not float(number).is_integer():  # NaN, negative, fractional
        raise DemoError(f"{name} must be a whole frame number of 0 or more, got {value}")
    return int(number)


# ------------------------------------------------------------------------------------------ the analyser
@dataclass
class Analysis:
    """What one upload gives the page."""

    message: str  # markdown: the outcome in words (the error when it failed)
    probabilities: dict[str, float] | None = None
    figure: Any = None  # PIL image of the explanation figure
    intervals: Any = None  # pandas DataFrame, one row per spotted interval (with --spotter)
    timeline: Any = None  # PIL image of the timeline figure (with --spotter)
    details: dict[str, Any] | None = None  # mer-predict's JSON output

    @property
    def ok(self) -> bool:
        return self.probabilities is not None


class Analyser:
    """The models, loaded once; `analyse` turns one upload into an `Analysis`, never raising."""

    def __init__(
        self,
        model_id: str,
        spotter_id: str | None = None,
        device: str = "cpu",
        max_seconds: float | None = None,
        max_frames: int = MAX_FRAMES,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        from .predict import load_model, load_processor

        self.model_id = model_id
        self.device = device
        self.model = load_model(model_id, explainable=True, device=device)
        self.processor, self.processor_source = load_processor(model_id, self.model, overrides or {})
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.spotter = Spotter(spotter_id, device) if spotter_id else None
        default_seconds = MAX_SECONDS if self.spotter is None else MAX_SPOT_SECONDS
        self.max_seconds = default_seconds if max_seconds is None else max_seconds
        self.max_frames = max_frames

    def analyse(self, video: str | None, onset: Any = None, apex: Any = None, offset: Any = None) -> Analysis:
        try:
            return self._analyse(video, onset, apex, offset)
        except DemoError as err:
            return Analysis(message=f"**Cannot analyse this upload:** {_sentence(err)}")
        except (ValueError, OSError, ImportError) as err:  # the processor's and the reader's one-line errors
            return Analysis(message=f"**Cannot analyse this upload:** {_sentence(_strip_paths(str(err), video))}")
        except Exception as err:  # a bug: one line on the page, the traceback in the server log
            logger.exception("mer-demo: analysing %s failed", video)
            return Analysis(
                message=f"**Something went wrong on the server** ({type(err).__name__}); the details are in its log."
            )

    def _analyse(self, video: str | None, onset: Any, apex: Any, offset: Any) -> Analysis:
        if not video:
            raise DemoError("no video yet: upload a file or record one with the webcam, then press Analyse")
        onset_n, apex_n, offset_n = (
            _frame_number(v, n) for v, n in ((onset, "onset"), (apex, "apex"), (offset, "offset"))
        )
        if onset_n is not None and offset_n is not None and offset_n <= onset_n:
            raise DemoError(f"offset ({offset_n}) must come after onset ({onset_n})")
        if apex_n is not None and (
            (onset_n is not None and apex_n < onset_n) or (offset_n is not None and apex_n > offset_n)
        ):
            raise DemoError(f"apex ({apex_n}) must lie between onset and offset")
        annotated = onset_n is not None or offset_n is not None or apex_n is not None
        # Recognition decodes the clip into memory (up to the offset): at most max_frames of it. Spotting streams.
        spotting_only = self.spotter is not None and not annotated
        whole = not spotting_only and offset_n is None  # the whole video is decoded
        info = probe_video(video, self.max_seconds, self.max_frames if whole else None)
        for value, name in ((onset_n, "onset"), (apex_n, "apex"), (offset_n, "offset")):
            if value is not None and value >= info.frames:
                raise DemoError(f"{name} ({value}) is past the video's last frame ({info.frames - 1})")
        if offset_n is not None and offset_n >= self.max_frames:
            raise DemoError(
                f"offset ({offset_n}): this demo decodes at most {self.max_frames} frames for recognition; cut the "
                "video so that the expression comes earlier"
            )
        work = Path(tempfile.mkdtemp(prefix="mer-demo-"))
        try:
            spotted = self.spotter.spot(video, self.model_id, self.device, work) if self.spotter is not None else None
            if spotting_only:
                return self._strongest_interval(video, spotted, info, work)
            output, figure = self._recognise(video, onset_n, apex_n, offset_n, work)
            analysis = Analysis(_summary(output, info), output["probabilities"], figure, details=output)
            if spotted is not None:
                analysis.intervals, analysis.timeline = spotted.table, spotted.timeline
                analysis.message += f"\n\n{spotted.summary()}"
            return analysis
        finally:
            shutil.rmtree(work, ignore_errors=True)  # the figures show a face: no copy outside Gradio's cache

    def _recognise(self, clip: Any, onset: int | None, apex: int | None, offset: int | None, work: Path) -> tuple[dict, Any]:
        """mer-predict's prediction with its --explain figure (as a PIL image)."""
        from PIL import Image

        from .predict import predict

        figure_path = work / "explanation.png"
        output = predict(clip, self.model, self.processor, onset, apex, offset, figure_path)
        with Image.open(figure_path) as opened:
            return output, opened.convert("RGB")

    def _strongest_interval(self, video: str, spotted: SpotResult, info: VideoInfo, work: Path) -> Analysis:
        """No frames given, a spotter present: every interval spotted and named; the strongest one explained."""
        from ..video_io import Clip

        usable = [k for k, frames in enumerate(spotted.clips) if len(frames) >= 2]
        if not usable:
            return Analysis(message=f"{spotted.summary()} in {Path(video).name} ({_length(info)}): nothing to "
                            "recognise; give onset and offset to recognise a clip of your choice",
                            intervals=spotted.table, timeline=spotted.timeline)
        top = max(usable, key=lambda k: spotted.intervals[k]["score"])
        interval, frames = spotted.intervals[top], spotted.clips[top]
        numbers = list(range(interval["onset"], interval["onset"] + len(frames)))
        apex = interval["apex"] if numbers[0] < interval["apex"] <= numbers[-1] else None
        clip = Clip(frames, numbers, f"{Path(video).name}, frames {numbers[0]}-{numbers[-1]}")
        output, figure = self._recognise(clip, numbers[0], apex, numbers[-1], work)
        message = (
            f"**{output['label']}** (p = {output['score']:.2f}) in the strongest spotted interval: {interval['type']}, "
            f"frames {interval['onset']}..{interval['offset']} ({interval['start_seconds']:.2f}-"
            f"{interval['end_seconds']:.2f} s), spotting score {interval['score']:.2f} · video: {_length(info)}"
            f"\n\n{spotted.summary()}"
        )
        return Analysis(message, output["probabilities"], figure, spotted.table, spotted.timeline, output)


def _sentence(err: Exception | str) -> str:
    text = " ".join(str(err).split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _strip_paths(text: str, video: str | None) -> str:
    """The server's upload path means nothing to the person at the browser: show the file name."""
    if video:
        text = text.replace(str(video), Path(video).name)
    return text


def _summary(output: dict[str, Any], info: VideoInfo) -> str:
    from .predict import describe_crop

    how = "estimated" if output["apex_estimated"] else "given"
    return (
        f"**{output['label']}** (p = {output['score']:.2f}) · clip frames {output['onset']}..{output['offset']}, "
        f"apex {output['apex']} ({how}) · video: {_length(info)}\n\nface: {describe_crop(output)}"
    )


def _length(info: VideoInfo) -> str:
    return f"{info.frames} frames" + (f", {info.seconds:.2f} s" if info.seconds is not None else "")


# --------------------------------------------------------------------------------------------- spotting
SPOTTER_MISSING = (
    "--spotter: this installation of modeling_mer has no spotting model (modeling_mer/modeling_spotting.py and "
    "mer-predict's long-video path, modeling_mer/cli/spot.py); update the package, or run without --spotter"
)
INTERVAL_COLUMNS = ["type", "onset", "apex", "offset", "start (s)", "end (s)", "spotting score", "emotion", "p"]


@dataclass
class SpotResult:
    """One upload spotted: mer-predict's intervals (named by the recogniser), the frames of each, the table
    rows and the timeline figure."""

    intervals: list[dict[str, Any]]
    clips: list[list[Any]]
    table: Any  # pandas DataFrame, INTERVAL_COLUMNS
    timeline: Any  # PIL image

    def summary(self) -> str:
        if not self.intervals:
            return "spotting: no micro- or macro-expression found"
        kinds = sorted({r["type"] for r in self.intervals})
        return f"spotting: {len(self.intervals)} interval(s) found ({', '.join(kinds)}): timeline and table below"


class Spotter:
    """`--spotter`: the spotting model run as `mer-predict long.mp4 --model SPOTTER --recognizer MODEL` runs
    it (modeling_mer.cli.spot: streamed, memory bounded by its window), and its timeline figure."""

    def __init__(self, spotter_id: str, device: str = "cpu") -> None:
        if any(importlib.util.find_spec(f"modeling_mer.{m}") is None for m in ("modeling_spotting", "cli.spot", "cli.timeline")):
            raise DemoError(SPOTTER_MISSING)
        from .spot import load_spotter

        self.spotter_id = spotter_id
        self.model, self.processor = load_spotter(spotter_id, device)

    def spot(self, video: str, recognizer_id: str, device: str, work: Path) -> SpotResult:
        import pandas as pd
        from PIL import Image

        from .spot import interval_frames, recognise, spot_video
        from .timeline import draw_timeline

        result = spot_video(video, self.model, self.processor)
        intervals = result["intervals"]
        boxes = {int(f): b for f, b in zip(result["frames"], result["boxes"])}
        clips, thumbnails = interval_frames(video, self.processor, intervals, result["fps"], boxes, keep_clips=True)
        recognise(clips, intervals, recognizer_id, device)
        figure = draw_timeline(work / "timeline.png", result, intervals, thumbnails, None, title=Path(video).name)
        with Image.open(figure) as opened:
            timeline = opened.convert("RGB")
        rows = [[r["type"], r["onset"], r["apex"], r["offset"], round(r["start_seconds"], 2), round(r["end_seconds"], 2),
                 round(float(r["score"]), 3), r.get("emotion", ""),
                 round(float(r["emotion_score"]), 3) if "emotion_score" in r else None] for r in intervals]
        return SpotResult(intervals, clips, pd.DataFrame(rows, columns=INTERVAL_COLUMNS), timeline)


# ---------------------------------------------------------------------------------------------- the page
def _theme() -> Any:
    import gradio as gr

    # System fonts: the default theme fetches Google Fonts, which an offline machine (or a test) cannot reach.
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_app(analyser: Analyser, title: str | None = None) -> Any:
    """The Gradio Blocks of the page, bound to `analyser`."""
    import gradio as gr

    title = title or "Micro-expression recognition"
    labels = ", ".join(analyser.labels)
    spotting = analyser.spotter is not None
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown(
            f"# {title}\n"
            f"Model: `{analyser.model_id}` ({len(analyser.labels)} classes: {labels}). Upload a short video of a "
            "face, or record one, and press **Analyse**. Without onset and offset the whole video is the clip; "
            "without an apex it is estimated from the motion. Videos are processed on this server and kept in "
            "its cache for at most an hour."
        )
        with gr.Row():
            with gr.Column(scale=1):
                video = gr.Video(label="your video", sources=["upload", "webcam"], height=360, elem_id="mer-video")
                with gr.Row():
                    # Text boxes, not gr.Number: an empty number box is sent as 0, a real frame number.
                    onset = gr.Textbox(label="onset frame", placeholder="optional", elem_id="mer-onset")
                    apex = gr.Textbox(label="apex frame", placeholder="optional: estimated", elem_id="mer-apex")
                    offset = gr.Textbox(label="offset frame", placeholder="optional", elem_id="mer-offset")
                button = gr.Button("Analyse", variant="primary", elem_id="mer-analyse")
            with gr.Column(scale=1):
                status = gr.Markdown("Upload a video, then press **Analyse**.", elem_id="mer-status")
                label = gr.Label(label="emotion", num_top_classes=len(analyser.labels), elem_id="mer-label")
        figure = gr.Image(label="where the model looked (mer-predict --explain)", type="pil", interactive=False,
                          buttons=["download", "fullscreen"], elem_id="mer-figure")
        outputs = [status, label, figure]
        if spotting:
            timeline = gr.Image(label="timeline of spotted intervals", type="pil", interactive=False,
                                buttons=["download", "fullscreen"], elem_id="mer-timeline")
            intervals = gr.Dataframe(label="spotted intervals", interactive=False, elem_id="mer-intervals")
            outputs += [timeline, intervals]

        def run(video_path: str | None, onset_v: Any, apex_v: Any, offset_v: Any) -> list[Any]:
            result = analyser.analyse(video_path, onset_v, apex_v, offset_v)
            values = [result.message, result.probabilities, result.figure]
            if spotting:
                values += [result.timeline, result.intervals]
            return values

        button.click(run, inputs=[video, onset, apex, offset], outputs=outputs, api_name="analyse")
    return app


def launch(
    app: Any, host: str | None = None, port: int | None = None, share: bool = False, block: bool = True
) -> Any:
    """Serve `app` (Gradio's own environment variables decide when host/port are None, as on Spaces);
    with `block`, say where and wait until interrupted."""
    app.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=True, theme=_theme(),
        show_error=False, ssr_mode=False, footer_links=["api", "gradio"], quiet=True,
    )
    if block:
        public = f" and {app.share_url} (public: anyone with the link)" if app.share_url else ""
        print(f"mer-demo: serving on {app.local_url}{public}; Ctrl-C stops", flush=True)
        try:
            app.block_thread()  # returns on Ctrl-C, having closed the server
        except KeyboardInterrupt:
            app.close()
    return app


def _import_gradio() -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a demo of face videos
    if importlib.util.find_spec("gradio") is None:
        raise DemoError(f"mer-demo needs gradio, which is not installed: {INSTALL_HINT}")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"on_no_face": args.on_no_face} if args.on_no_face else {}


def serve(argv: Sequence[str] | None = None, block: bool = True) -> Any:
    """Parse, load, build and launch; returns the Gradio app (with block=False, already serving)."""
    args = build_parser().parse_args(argv)
    if args.write_space is not None:
        raise DemoError("--write_space writes files and exits: use main()")
    _import_gradio()
    analyser = Analyser(args.model, args.spotter, args.device, args.max_seconds, args.max_frames, _overrides(args))
    app = build_app(analyser, args.title)
    launch(app, args.host, args.port, args.share, block=block)
    return app


# ------------------------------------------------------------------------------------- Hugging Face Space
SPACE_APP = '''"""Hugging Face Space: the modeling-mer micro-expression demo (written by `mer-demo --write-space`).

The same page as `mer-demo --model {model}`; the package is vendored next to this file (modeling_mer/).
Set the Space variable MER_MODEL to serve another model; a private model needs a Space secret HF_TOKEN
that can read it.
"""

import os

from modeling_mer.cli.demo import Analyser, build_app, launch

MODEL = os.environ.get("MER_MODEL", {model!r})
SPOTTER = os.environ.get("MER_SPOTTER", {spotter!r}) or None
TITLE = {title!r}

demo = build_app(Analyser(MODEL, SPOTTER), TITLE)

if __name__ == "__main__":
    launch(demo)
'''

SPACE_BODY = """
# {title}

A browser demo of a micro-expression recogniser from
[modeling-mer](https://arxiv.org/abs/2112.05851) (SLSTT: a purely transformer-based recogniser, optical
flow -> ViT per frame -> temporal aggregator). Upload or record a short video of a face; the page shows the
recognised emotion with the probability of every class and where the model looked (attention rollout over
the face, the flow image and the weight of each sampled frame){spot_text}.

- Model: {model_text}. Its own card states its licence and the data it was trained on: micro-expression
  datasets (CASME II, SAMM, SMIC) are licensed for research only.
- Set the Space variable `MER_MODEL` to serve another model; a private model needs a Space secret `HF_TOKEN`
  that can read it.
- Uploads are processed on the Space's machine and kept in Gradio's cache for at most an hour. Faces are
  personal data: tell the people you record, and do not make a Space public with their videos in it.

Written by `mer-demo --write-space` (modeling-mer {version}); `app.py` runs the same page as `mer-demo`.
"""


def _is_local(model_id: str) -> bool:
    return Path(model_id).expanduser().exists() or model_id.startswith((".", "/", "~"))


def _space_requirements() -> list[str]:
    """The package's own dependencies (the Space installs gradio from sdk_version, so not listed)."""
    from importlib import metadata

    requirements = []
    for line in metadata.requires("modeling-mer") or []:
        if "extra ==" in line:
            continue
        requirements.append(line.split(";")[0].strip())
    return requirements


def _gradio_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("gradio")
    except metadata.PackageNotFoundError:
        raise DemoError(f"--write_space pins the Space's Gradio to the version installed here, and none is: {INSTALL_HINT}") from None


def _copy_model(source: str, target: Path, what: str) -> None:
    """A local model's top-level files (weights, config, processor, code, card); never checkpoints/ or folds/."""
    folder = Path(source).expanduser()
    if not (folder / "config.json").is_file():
        raise DemoError(f"--{what} {source}: no model folder there (config.json missing)")
    target.mkdir()
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            shutil.copy2(path, target / path.name)


def write_space(folder: str | Path, model_id: str, spotter_id: str | None = None, title: str | None = None) -> list[Path]:
    """Write a ready Gradio Space to `folder`: app.py, requirements.txt, README.md (Space metadata), the
    package (modeling_mer/) and, for a local model, the model itself (model/). Returns the files written."""
    from importlib import metadata

    from huggingface_hub import SpaceCard, SpaceCardData

    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DemoError(f"--write_space {folder}: exists and is not an empty folder; choose a new one")
    sdk_version = _gradio_version()
    hub_models: list[str] = []
    served: dict[str, str | None] = {"model": model_id, "spotter": spotter_id}
    for what, ident in (("model", model_id), ("spotter", spotter_id)):
        if ident is None:
            continue
        if not _is_local(ident):
            from huggingface_hub.utils import HFValidationError, validate_repo_id

            try:
                validate_repo_id(ident)
            except HFValidationError as err:
                raise DemoError(f"--{what} {ident}: neither a folder here nor a Hub repo id ({_sentence(err)})") from None
            hub_models.append(ident)
        elif not (Path(ident).expanduser() / "config.json").is_file():
            raise DemoError(f"--{what} {ident}: no model folder there (config.json missing)")
    package = Path(importlib.util.find_spec("modeling_mer").origin).parent
    title = title or "Micro-expression recognition"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for what, ident in (("model", model_id), ("spotter", spotter_id)):
            if ident is not None and _is_local(ident):
                target = SPACE_MODEL_DIR if what == "model" else SPACE_SPOTTER_DIR
                _copy_model(ident, folder / target, what)
                served[what] = target
        shutil.copytree(package, folder / "modeling_mer", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (folder / "app.py").write_text(
            SPACE_APP.format(model=served["model"], spotter=served["spotter"] or "", title=title), encoding="utf-8"
        )
        (folder / "requirements.txt").write_text(
            "# modeling-mer's dependencies; Gradio itself comes from sdk_version in README.md\n"
            + "\n".join(_space_requirements()) + "\n",
            encoding="utf-8",
        )
        data = SpaceCardData(
            title=title[:60],
            emoji="🙂",
            colorFrom="indigo",
            colorTo="pink",
            sdk="gradio",
            sdk_version=sdk_version,
            python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
            app_file="app.py",
            license="apache-2.0",
            models=hub_models or None,
            short_description="Micro-expression recognition from a video (SLSTT)",
            pinned=False,
            tags=["micro-expression", "video-classification", "affective-computing"],
        )
        model_text = (
            f"[`{model_id}`](https://huggingface.co/{model_id})" if not _is_local(model_id)
            else f"`{SPACE_MODEL_DIR}/` in this Space (copied from `{Path(model_id).name}`)"
        )
        spot_text = ", and the micro-expressions spotted along the video" if spotter_id else ""
        body = SPACE_BODY.format(
            title=title, model_text=model_text, spot_text=spot_text, version=metadata.version("modeling-mer")
        )
        card = SpaceCard(f"---\n{data.to_yaml()}\n---\n{body}")
        card.save(folder / "README.md")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half-written Space
        raise
    return sorted(p for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.write_space is not None:
            files = write_space(args.write_space, args.model, args.spotter, args.title)
            top = sorted({p.relative_to(Path(args.write_space).expanduser()).parts[0] for p in files})
            print(f"wrote a Hugging Face Space to {args.write_space} ({len(files)} files: {', '.join(top)})")
            print(f"upload it with: hf upload --repo-type space YOU/SPACE_NAME {args.write_space}")
            return 0
        _import_gradio()
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        analyser = Analyser(args.model, args.spotter, args.device, args.max_seconds, args.max_frames, _overrides(args))
    except (ValueError, OSError, ImportError) as err:  # DemoError, PredictError, the processor's, I/O
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    try:
        launch(build_app(analyser, args.title), args.host, args.port, args.share, block=True)
    except KeyboardInterrupt:  # Ctrl-C while Gradio was still starting
        print("mer-demo: stopped", file=sys.stderr)
        return 130
    return 0


__all__ = [
    "Analyser",
    "Analysis",
    "DemoError",
    "VideoInfo",
    "build_app",
    "build_parser",
    "launch",
    "SpotResult",
    "Spotter",
    "main",
    "probe_video",
    "serve",
    "write_space",
]

if __name__ == "__main__":
    sys.exit(main())
