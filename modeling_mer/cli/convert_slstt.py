"""Convert an official SLSTT checkpoint into a `from_pretrained` folder.

    python -m modeling_mer.cli.convert_slstt SRC OUT_DIR --aggregation {lstm,mean} [--num_attention_heads N]
        [--dataset casme2|samm|smic|composite | --labels a,b,c] [--num_frames 11]

SRC is an official `.pth.tar` (a torch pickle holding `state_dict`, keys prefixed `module.` by
DataParallel), a bare state dict, or a `.safetensors` file. Every dimension but the number of attention
heads is read from the tensor shapes; the official files hold the same keys for both variants, so the
aggregation must be named. The official ViT uses tanh-GELU and LayerNorm eps 1e-6.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from pathlib import Path

import torch

from ..configuration_mer import CLASS_SETS, MERConfig
from ..modeling_mer import MERForVideoClassification
from .arguments import build_convert_parser

logger = logging.getLogger(__name__)

OFFICIAL_LABELS: dict[str, list[str]] = {
    "casme2": CLASS_SETS["casme2_5class"],
    "samm": CLASS_SETS["samm_5class"],
    "smic": CLASS_SETS["3class"],
    "composite": CLASS_SETS["3class"],
}

# Official ViT block parameter -> ours, inside `blocks.{i}.` / `layers.{i}.`.
_BLOCK_KEYS = {
    "attn.proj_q": "attention.q_proj",
    "attn.proj_k": "attention.k_proj",
    "attn.proj_v": "attention.v_proj",
    "proj": "attention.o_proj",
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "pwff.fc1": "mlp.fc1",
    "pwff.fc2": "mlp.fc2",
}
_VIT_KEYS = {
    "vit.class_token": "mer.spatial_encoder.embeddings.cls_token",
    "vit.positional_embedding.pos_embedding": "mer.spatial_encoder.embeddings.position_embeddings",
    "vit.patch_embedding.weight": "mer.spatial_encoder.embeddings.patch_embeddings.projection.weight",
    "vit.patch_embedding.bias": "mer.spatial_encoder.embeddings.patch_embeddings.projection.bias",
    "vit.norm.weight": "mer.spatial_encoder.layernorm.weight",
    "vit.norm.bias": "mer.spatial_encoder.layernorm.bias",
}
_BLOCK_RE = re.compile(r"^vit\.transformer\.blocks\.(\d+)\.(.+)\.(weight|bias)$")
_LSTM_RE = re.compile(r"^lstm\.((weight|bias)_(ih|hh)_l\d+)$")


class ConversionError(ValueError):
    """The checkpoint does not have the official SLSTT layout."""


def load_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official checkpoint (pickle with `state_dict`, bare state dict, or safetensors), drop `module.`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:  # SafetensorError for a truncated or random file, OSError...
            raise ConversionError(f"{path}: cannot be read as safetensors ({type(err).__name__}: {err})") from err
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling errors come in many types; name the file in every case
            raise ConversionError(
                f"{path}: cannot be read as a torch checkpoint with weights_only=True: {err}"
            ) from err
        state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
        if not isinstance(state, dict):
            raise ConversionError(
                f"{path}: expected a dict with 'state_dict' or a state dict, got {type(obj).__name__}"
            )
    tensors = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        tensors[key.removeprefix("module.")] = value
    return tensors


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    indices = {int(m.group(1)) for key in state if (m := re.match(pattern, key))}
    if indices != set(range(len(indices))):
        raise ConversionError(f"non-contiguous indices for {pattern}: {sorted(indices)}")
    return len(indices)


def _require(state: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise ConversionError(f"missing key {key!r} (not an official SLSTT checkpoint?)")
    return state[key]


def infer_config(
    state: dict[str, torch.Tensor],
    aggregation: str,
    labels: list[str] | None,
    num_attention_heads: int | None,
    num_frames: int = 11,
) -> MERConfig:
    """Every dimension from the tensor shapes; heads from the argument (or hidden // 64, the ViT convention)."""
    if aggregation not in ("lstm", "mean"):
        raise ConversionError(f"official checkpoints are 'lstm' or 'mean', got {aggregation!r}")
    hidden = _require(state, "vit.class_token").shape[-1]
    patch_weight = _require(state, "vit.patch_embedding.weight")  # (D, C, P, P)
    patch = patch_weight.shape[-1]
    positions = _require(state, "vit.positional_embedding.pos_embedding").shape[1] - 1
    grid = math.isqrt(positions)
    if grid * grid != positions:
        raise ConversionError(f"{positions} position embeddings (plus CLS) do not form a square grid")
    if num_attention_heads is None:
        if hidden % 64:
            raise ConversionError(
                f"hidden size {hidden} is not a multiple of 64: pass --num_attention_heads (heads cannot be "
                "inferred from shapes)"
            )
        num_attention_heads = hidden // 64
    if hidden % num_attention_heads:
        raise ConversionError(f"hidden size {hidden} is not divisible by {num_attention_heads} heads")
    head_out = "fc2.weight" if aggregation == "lstm" else "vit.fc.weight"
    num_labels = _require(state, head_out).shape[0]
    if labels is None:
        labels = [f"LABEL_{i}" for i in range(num_labels)]
    if len(labels) != num_labels:
        raise ConversionError(
            f"the checkpoint has {num_labels} classes but {len(labels)} labels were given: {labels}"
        )
    kwargs = {}
    if aggregation == "lstm":
        kwargs = {
            "lstm_hidden_size": _require(state, "lstm.weight_hh_l0").shape[1],
            "lstm_num_layers": _count(state, r"^lstm\.weight_ih_l(\d+)$"),
            "head_hidden_size": _require(state, "fc1.weight").shape[0],
        }
    return MERConfig(
        vision_config={
            "hidden_size": hidden,
            "num_hidden_layers": _count(state, r"^vit\.transformer\.blocks\.(\d+)\."),
            "num_attention_heads": num_attention_heads,
            "intermediate_size": _require(state, "vit.transformer.blocks.0.pwff.fc1.weight").shape[0],
            "hidden_act": "gelu_pytorch_tanh",
            "layer_norm_eps": 1e-6,
            "image_size": grid * patch,
            "patch_size": patch,
            "num_channels": patch_weight.shape[1],
        },
        num_frames=num_frames,
        aggregation=aggregation,
        freeze_spatial=True,  # the official training froze the backbone
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **kwargs,
    )


def map_keys(state: dict[str, torch.Tensor], aggregation: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Official names -> ours. Returns the mapped tensors and the official keys this variant does not use."""
    unused_prefixes = ("lstm.", "fc1.", "fc2.") if aggregation == "mean" else ("vit.fc.",)
    mapped, unused, unknown = {}, [], []
    for key, tensor in state.items():
        if key in _VIT_KEYS:
            mapped[_VIT_KEYS[key]] = tensor
        elif (m := _BLOCK_RE.match(key)) and m.group(2) in _BLOCK_KEYS:
            mapped[f"mer.spatial_encoder.layers.{m.group(1)}.{_BLOCK_KEYS[m.group(2)]}.{m.group(3)}"] = tensor
        elif key.startswith(unused_prefixes):
            unused.append(key)
        elif aggregation == "lstm" and (m := _LSTM_RE.match(key)):
            mapped[f"mer.aggregator.lstm.{m.group(1)}"] = tensor
        elif aggregation == "lstm" and key.startswith(("fc1.", "fc2.")):
            layer = "dense" if key.startswith("fc1.") else "out_proj"
            mapped[f"classifier.{layer}.{key.split('.', 1)[1]}"] = tensor
        elif aggregation == "mean" and key.startswith("vit.fc."):
            mapped[f"classifier.out_proj.{key.rsplit('.', 1)[1]}"] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise ConversionError(
            f"unknown keys in the checkpoint (not the official SLSTT layout): {sorted(unknown)}"
        )
    return mapped, unused


def convert(
    src: str | Path,
    aggregation: str,
    labels: list[str] | None = None,
    num_attention_heads: int | None = None,
    num_frames: int = 11,
) -> MERForVideoClassification:
    """Build our model with the official weights; missing, unexpected or mis-shaped tensors raise."""
    state = load_official_state_dict(src)
    non_finite = sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all())
    if non_finite:
        raise ConversionError(
            f"{src}: {len(non_finite)} tensor(s) hold NaN or Inf, a model converted from them predicts nothing: "
            f"{', '.join(non_finite[:5])}{' ...' if len(non_finite) > 5 else ''}"
        )
    config = infer_config(state, aggregation, labels, num_attention_heads, num_frames)
    model = MERForVideoClassification(config)
    mapped, unused = map_keys(state, aggregation)
    if unused:  # the official files hold both variants' heads; the other variant's are not used
        prefixes = sorted({key.rsplit(".", 1)[0] for key in unused})
        logger.info("official weights not used by SLSTT-%s (as in the official forward): %s", aggregation, prefixes)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped))
    if missing:
        raise ConversionError(f"{src}: the checkpoint lacks weights for: {missing}")
    wrong = [
        f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in mapped.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise ConversionError(f"{src}: shape mismatches (checkpoint vs model): {wrong}")
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = build_convert_parser(__doc__.split("\n\n")[0])  # modeling_mer.cli.arguments (parsed first, fast)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    labels = (
        OFFICIAL_LABELS[args.dataset] if args.dataset else (args.labels.split(",") if args.labels else None)
    )
    try:
        model = convert(args.src, args.aggregation, labels, args.num_attention_heads, args.num_frames)
    except (ConversionError, FileNotFoundError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)  # one line
        return 2
    if labels is None:
        print("warning: no --dataset/--labels: classes are named LABEL_0..", file=sys.stderr)
    if args.dataset:  # the authors trained on it: the model card's licence follows (research use only)
        model.config.train_datasets = [args.dataset]
    model.save_pretrained(args.out_dir)
    from ..processing_mer import MERImageProcessor

    processor = MERImageProcessor(image_size=model.config.image_size, num_frames=args.num_frames)
    processor.save_pretrained(args.out_dir)
    print(
        f"wrote {args.out_dir} ({args.aggregation}, {model.config.num_labels} classes, image {model.config.image_size})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
