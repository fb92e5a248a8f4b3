"""Predict the micro-expression in a user's own video or frame folder, from the command line.

    python -m modeling_mer.cli.predict INPUT --model ID_OR_DIR [--onset N --apex N --offset N]
                                   [--top_k K] [--json] [--explain OUT.png] [processor options]

INPUT is a video file (anything FFmpeg reads through PyAV) or a folder of numbered frame images.
Without onset/offset the whole input is the clip; without apex it is spotted (largest flow from the
onset). The model is a saved `MERForVideoClassification` (folder or Hub id); its saved processor is
used, or, when the folder has none, the default `MERImageProcessor` matched to the model's config.
Bad input ends with one `error: ...` line on stderr and exit status 1, never a traceback: the people
running this are not necessarily the people who wrote it. `--explain` writes a figure of where the
model looked (see `modeling_mer.cli.explain`) to the given path only: it shows a face.

`--json` prints one object: label, score (its probability), probabilities (every class, summing to 1),
frame_numbers (the sampled frames; fractional where a short clip needed synthesised frames), apex,
apex_estimated, onset, offset, the face crop (crop_box [x, y, w, h] in the input's pixels, crop_source:
dlib-landmarks, dlib-box, haar, box, none or full_frame; crop_score: the detection's score; crop_faces: how
many faces were found, the best one being used; crop_angle; crop_frame: the frame it was found on), input,
model, processor ("saved" or "default"), and with --explain: explanation {figure, title, shown_frame,
temporal_method, frame_weights}.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from transformers.utils import cached_file
from transformers.utils import logging as hf_logging

from ..configuration_mer import MERConfig, json_kind
from ..face_crop import crop_resize
from ..modeling_mer import MERForVideoClassification
from ..processing_mer import MERImageProcessor, check_processor_geometry
from ..video_io import Clip, decode_from, decode_until, load_clip
from .arguments import build_predict_parser
from .explain import Explanation, explain, heat_on_face, save_figure

PROCESSOR_FILE = "preprocessor_config.json"
DISPLAY_SIZE = 256  # pixels per panel side of the explain figure


class PredictError(ValueError):
    """Bad input to the command: reported as one line on stderr."""


def note(message: str) -> None:
    """Side information goes to stderr, so that `--json` output on stdout stays machine-readable."""
    print(f"note: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- loading
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _one_line(text: str) -> str:
    """The first line of a library's message (the rest is advice for another setting)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else str(text)


def _check_model_location(model_id: str) -> None:
    """A path that does not exist would otherwise be sent to the Hub as a repo id."""
    looks_local = model_id.startswith((".", "/", "~")) or model_id.count("/") > 1 or "\\" in model_id
    if looks_local and not Path(model_id).expanduser().exists():
        raise PredictError(f"--model {model_id}: no such model folder")


def check_device(device: str) -> torch.device:
    """The torch device named by --device, refused in one line when it is unknown or absent here."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise PredictError(f"--device {device}: not a torch device ({_one_line(err)})") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise PredictError(f"--device {device}: CUDA is not available to this torch ({torch.__version__}); use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise PredictError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise PredictError(f"--device {device}: MPS is not available on this machine; use --device cpu")
    return parsed


def _weights_file(model_id: str) -> str:
    """The weights file a local model folder holds, for error messages (the id itself for a Hub model)."""
    folder = Path(model_id).expanduser()
    found = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    return str(found[0]) if found else model_id


def non_finite_parameters(model: torch.nn.Module) -> list[str]:
    return [name for name, tensor in model.state_dict().items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]


def load_model(model_id: str, explainable: bool = False, device: str = "cpu") -> MERForVideoClassification:
    """A saved `MERForVideoClassification`, refusing other model types and incomplete weights.

    `explainable` loads eager attention, the only kind that returns attention weights.
    """
    _check_model_location(model_id)
    try:
        config_dict, _ = MERConfig.get_config_dict(model_id)  # any model type; a non-object JSON is refused
    except (OSError, ValueError) as err:
        if not Path(model_id).expanduser().exists():  # neither a folder here nor a model the Hub gave
            raise PredictError(
                f"--model {model_id}: no such model folder ({Path(model_id).expanduser().absolute()}), and not "
                f"found on the Hub either ({_one_line(err)})"
            ) from None
        raise PredictError(f"--model {model_id}: cannot read a model config: {_one_line(err)}") from None
    model_type = config_dict.get("model_type")
    if model_type is None:
        raise PredictError(f"--model {model_id}: no model config (config.json with a model_type) found there")
    if model_type != "mer":
        raise PredictError(
            f"--model {model_id}: is a {model_type!r} model, not a micro-expression model (model_type 'mer'); "
            "pass a folder saved from MERForVideoClassification"
        )
    # Mismatched shapes are loaded as "reinitialised" and reported below, never raised as a traceback.
    kwargs: dict[str, Any] = {"output_loading_info": True, "ignore_mismatched_sizes": True}
    if explainable:
        kwargs["attn_implementation"] = "eager"
    target = check_device(device)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report is multi-line; what matters is raised below in one line
    try:
        model, info = MERForVideoClassification.from_pretrained(model_id, **kwargs)
    except pickle.UnpicklingError:  # torch.load(weights_only=True) refused it; nothing was executed
        raise PredictError(
            f"--model {model_id}: refused to load {_weights_file(model_id)}: it holds Python objects other than "
            "tensors, which could run code when unpickled (nothing was run); use a model saved as safetensors"
        ) from None
    except Exception as err:  # safetensors, torch: name the file in every case
        raise PredictError(
            f"--model {model_id}: cannot load the model weights {_weights_file(model_id)} "
            f"({type(err).__name__}: {_one_line(err)})"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    mismatched = sorted(info.get("mismatched_keys") or [])
    classifier = [m for m in mismatched if m[0].startswith("classifier.") and m[0].endswith("weight")]
    if classifier:
        key, stored, wanted = classifier[-1]
        raise PredictError(
            f"--model {model_id}: config.json names {wanted[0]} labels but the weights in "
            f"{_weights_file(model_id)} classify {stored[0]} classes ({key}): the config does not belong to these weights"
        )
    problems = {k: list(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if problems:
        detail = "; ".join(f"{k}: {sorted(v)[:5]}{' ...' if len(v) > 5 else ''}" for k, v in problems.items())
        raise PredictError(f"--model {model_id}: weights do not match MERForVideoClassification ({detail})")
    bad = non_finite_parameters(model)
    if bad:
        raise PredictError(
            f"--model {model_id}: {len(bad)} weight tensor(s) in {_weights_file(model_id)} hold NaN or Inf "
            f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})"
        )
    return model.to(target).eval()


def load_processor(model_id: str, model: MERForVideoClassification, overrides: dict[str, Any]) -> tuple[MERImageProcessor, str]:
    """The model's saved processor, or the default one matched to its config. Returns (processor, source)."""
    config = model.config
    try:
        saved = cached_file(model_id, PROCESSOR_FILE, _raise_exceptions_for_missing_entries=False)
    except OSError as err:
        raise PredictError(f"--model {model_id}: cannot look for {PROCESSOR_FILE}: {err}") from None
    try:
        if saved is None:
            processor = MERImageProcessor.for_config(config, **overrides)
            note(
                f"{model_id} has no saved processor ({PROCESSOR_FILE}); using the default MERImageProcessor for "
                f"its config (image_size={config.image_size}, num_frames={config.num_frames}, "
                f"crop={processor.crop!r}, flow={processor.flow!r}, encoding={processor.encoding!r})"
            )
            source = "default"
        else:
            try:
                raw = json.loads(Path(saved).read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise PredictError(f"{saved} is unreadable ({_one_line(err)})") from None
            if not isinstance(raw, dict):  # valid JSON of another shape (a list, a number, null...)
                raise PredictError(f"{saved} holds a JSON {json_kind(raw)}, not an object of settings")
            settings, _ = MERImageProcessor.get_image_processor_dict(model_id)
            kind = settings.get("image_processor_type", "MERImageProcessor")
            if kind != "MERImageProcessor":
                raise PredictError(f"--model {model_id}: {PROCESSOR_FILE} is a {kind}, not a MERImageProcessor")
            processor = MERImageProcessor.from_dict({**settings, **overrides})
            source = "saved"
    except (TypeError, ValueError) as err:
        raise PredictError(f"processor settings: {err}") from None
    return processor, source


# -------------------------------------------------------------------------------------------- inference
def _number(value: float) -> int | float:
    """Frame numbers as JSON: whole numbers as ints, synthesised (fractional) positions as floats."""
    return int(value) if float(value).is_integer() else float(value)


def predict(
    video: str | Path | Clip,
    model: MERForVideoClassification,
    processor: MERImageProcessor,
    onset: int | None = None,
    apex: int | None = None,
    offset: int | None = None,
    explain_path: str | Path | None = None,
) -> dict[str, Any]:
    """One clip -> label, probability per class, the frames used, the apex; optionally the figure."""
    check_processor_geometry(model.config, processor)
    clip = video if isinstance(video, Clip) else load_clip(
        video, last_frame=decode_until(onset, offset), first_frame=decode_from(onset, offset)
    )
    result = processor.compute_flow(clip, onset=onset, apex=apex, offset=offset)
    pixel_values = processor.encode_flow(torch.from_numpy(result["flow"])).unsqueeze(0)
    pixel_values = pixel_values.to(device=model.device, dtype=model.dtype)
    explanation = None
    if explain_path is not None:
        explanation = explain(model, pixel_values)
        logits = torch.from_numpy(explanation.logits)
    else:
        with torch.no_grad():
            logits = model(pixel_values=pixel_values).logits[0]
    if not torch.isfinite(logits).all():
        raise PredictError(
            f"the model {model.name_or_path or ''} produced non-finite scores (NaN/Inf) for {clip.source}: "
            "no prediction can be made from them"
        )
    probabilities = torch.softmax(logits.double().cpu(), dim=-1).tolist()
    labels = [model.config.id2label[i] for i in range(len(probabilities))]
    best = int(np.argmax(probabilities))
    output: dict[str, Any] = {
        "input": clip.source,
        "label": labels[best],
        "score": probabilities[best],
        "probabilities": dict(zip(labels, probabilities)),
        "frame_numbers": [_number(n) for n in result["frame_numbers"]],
        "apex": int(result["apex"]),
        "apex_estimated": bool(result["apex_estimated"]),
        "onset": int(result["onset"]),
        "offset": int(result["offset"]),
        "crop_box": [int(c) for c in result["crop_box"]],
        **{k: result[k] for k in ("crop_source", "crop_score", "crop_faces", "crop_angle")},
        "crop_frame": _number(result["crop_frame"]),
    }
    if explanation is not None:
        shown, title = _draw(explain_path, clip, result, pixel_values, explanation, processor, model, output)
        output["explanation"] = {
            "figure": str(explain_path),
            "title": title,
            "shown_frame": _number(result["frame_numbers"][shown]),
            "temporal_method": explanation.temporal_method,
            "frame_weights": [float(w) for w in explanation.temporal],
        }
    return output


def _draw(
    path: str | Path,
    clip: Clip,
    result: dict[str, Any],
    pixel_values: torch.Tensor,
    explanation: Explanation,
    processor: MERImageProcessor,
    model: MERForVideoClassification,
    output: dict[str, Any],
) -> tuple[int, str]:
    """Figure for the sampled frame nearest the apex. Returns that frame's index in the sample, and the title."""
    numbers = np.asarray(result["frame_numbers"], dtype=np.float64)
    shown = int(np.argmin(np.abs(numbers - result["apex"])))
    real = int(np.argmin(np.abs(np.asarray(clip.frame_numbers) - numbers[shown])))  # a real frame to show
    face = crop_resize(clip[real], tuple(result["crop_box"]), DISPLAY_SIZE, result["crop_angle"])
    heat = heat_on_face(explanation.spatial[shown], processor.image_size, model.config.patch_size, DISPLAY_SIZE)
    mean = torch.tensor(processor.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.image_std).view(3, 1, 1)
    seen = (pixel_values[0, shown].float().cpu() * std + mean).permute(1, 2, 0).numpy()  # the ViT's input
    seen = cv2.resize(seen, (DISPLAY_SIZE, DISPLAY_SIZE), interpolation=cv2.INTER_NEAREST)
    how = "estimated" if output["apex_estimated"] else "given"
    title = f"{output['label']} (p = {output['score']:.2f}); apex {output['apex']} ({how})\nface: {describe_crop(output)}"
    save_figure(path, face, heat, seen, explanation.temporal, result["frame_numbers"], shown,
                explanation.temporal_method, title)
    return shown, title


def describe_crop(output: dict[str, Any]) -> str:
    """The crop in words: where it comes from, how sure the detector was, how many faces it saw."""
    source, box = output["crop_source"], output["crop_box"]
    if source == "none":
        return f"the whole frame {box} (crop='none': frames taken as already cropped)"
    if source == "box":
        return f"the given box {box}"
    if source == "full_frame":
        return f"NO FACE FOUND on frame {output['crop_frame']}: the whole frame {box} was used (on_no_face='full_frame')"
    text = f"{source} {box} on frame {output['crop_frame']}, score {output['crop_score']:.2f}"
    if output["crop_angle"]:
        text += f", turned {output['crop_angle']:.1f} deg"
    if output["crop_faces"] > 1:
        text += f"; {output['crop_faces']} faces found, the best used"
    return text


# ---------------------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    return build_predict_parser()  # modeling_mer.cli.arguments: parsed there first, before the heavy imports


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    if args.crop is not None and args.crop_box is not None:
        raise PredictError("give either --crop or --crop-box, not both")
    values = {
        "crop": list(args.crop_box) if args.crop_box is not None else args.crop,
        "crop_margin": args.crop_margin,
        "on_no_face": args.on_no_face,
        "face_threshold": args.face_threshold,
        "align": args.align,
        "flow": args.flow,
    }
    return {k: v for k, v in values.items() if v is not None}


def format_text(output: dict[str, Any], top_k: int) -> str:
    ranked = sorted(output["probabilities"].items(), key=lambda kv: kv[1], reverse=True)[:top_k]
    width = max(len(label) for label, _ in ranked)
    lines = [f"prediction: {output['label']} (p = {output['score']:.3f})"]
    lines += [f"  {label:<{width}}  {p:.3f}" for label, p in ranked]
    how = "estimated" if output["apex_estimated"] else "given"
    frames = ", ".join(str(n) for n in output["frame_numbers"])
    lines.append(f"clip: frames {output['onset']}..{output['offset']}, apex {output['apex']} ({how})")
    lines.append(f"sampled frames: {frames}")
    lines.append(f"face: {describe_crop(output)}")
    if "explanation" in output:
        lines.append(f"explanation figure: {output['explanation']['figure']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.top_k is not None and args.top_k < 1:
        raise PredictError(f"--top_k must be at least 1, got {args.top_k}")
    if args.explain is not None and not Path(args.explain).parent.is_dir():
        raise PredictError(f"--explain {args.explain}: folder {Path(args.explain).parent} does not exist")
    overrides = _overrides(args)
    # Read the input first (a bad file should not wait for a model download): only onset..offset is kept.
    clip = load_clip(args.input, last_frame=decode_until(args.onset, args.offset), first_frame=decode_from(args.onset, args.offset))
    model = load_model(args.model, explainable=args.explain is not None, device=args.device)
    processor, source = load_processor(args.model, model, overrides)
    output = predict(clip, model, processor, args.onset, args.apex, args.offset, args.explain)
    output["model"] = args.model
    output["processor"] = source
    return output


def main(argv: Sequence[str] | None = None) -> int:
    from .spot import wants_spotting  # a spotting model (long video -> intervals) has its own command line

    if wants_spotting(argv):
        from .spot import main as spot_main

        return spot_main(argv)
    args = build_parser().parse_args(argv)
    hf_logging.disable_progress_bar()
    try:
        output = run(args)
    except (ValueError, OSError, ImportError) as err:  # PredictError, the processor's, I/O, a missing dlib model
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)  # one line, whatever the library wrote
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the usual status, no traceback (nothing is written but the output)
        print("\ninterrupted (Ctrl-C): no prediction made", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(output, indent=2, allow_nan=False))  # strict JSON: NaN was refused above
    else:
        print(format_text(output, args.top_k or len(output["probabilities"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
