"""Training and inference throughput of our model against the official SLSTT execution, in one run.

Ours: `MERForVideoClassification` with all frames of a batch flattened through the ViT in one call, SDPA
attention, bf16 autocast on GPU (float32 on CPU unless `--autocast bf16`), optional `torch.compile`, full
fine-tuning unless the preset freezes the backbone (`--train_spatial` overrides). Naive: `naive_slstt.py`,
the official execution (float32, eager attention, one ViT call per frame, the backbone under no_grad, the
LSTM stepped frame by frame, batch 2). Both see random clips already resident on the device: data loading
is not part of either figure. Warm-up steps are excluded from the timings.

    python bench/throughput.py --preset tiny --json bench/results/throughput_tiny_cpu.json
    python bench/throughput.py --preset slstt-b16-384 --device cuda --train_spatial full --compile

FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` on one clip with eager attention (CPU
SDPA kernels are not counted by it; the mathematics is the same), and scale linearly with the batch.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent)):  # runnable as a script from anywhere
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _common import (  # noqa: E402
    PeakMemory,
    describe_device,
    machine_info,
    now_iso,
    resolve_device,
    synchronize,
    write_json,
)
from naive_slstt import NaiveSLSTT, NaiveSLSTTConfig  # noqa: E402

from modeling_mer import PRESETS, MERConfig, MERForVideoClassification  # noqa: E402

NUM_CLASSES = 5  # CASME II / SAMM, as the official full model
LABELS = [f"class_{i}" for i in range(NUM_CLASSES)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each measurement")
    p.add_argument("--batch_size", type=int, default=None, help="clips per step of ours (default 8 on CPU, 16 on GPU)")
    p.add_argument("--naive_batch_size", type=int, default=2, help="clips per step of the naive path (official: 2)")
    p.add_argument("--num_frames", type=int, default=None, help="frames per clip (default: the preset's)")
    p.add_argument("--aggregation", choices=("transformer", "lstm", "mean"), default=None,
                   help="our temporal aggregator (default: the preset's)")
    p.add_argument("--naive_aggregation", choices=("lstm", "mean"), default="lstm", help="SLSTT-LSTM or SLSTT-Mean")
    p.add_argument("--train_spatial", choices=("preset", "full", "frozen"), default="preset",
                   help="train our ViT (full), keep it fixed (frozen, as the official code) or follow the preset")
    p.add_argument("--autocast", choices=("auto", "bf16", "off"), default="auto",
                   help="ours only: auto = bf16 on GPU, float32 on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile our model (compilation is in the warm-up)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice); 1 is steadier on a shared, loaded machine")
    p.add_argument("--skip_naive", action="store_true", help="measure ours only (e.g. a batch-size sweep)")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    for name in ("steps", "naive_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("batch_size", "num_frames", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    return args


def build_config(args: argparse.Namespace) -> MERConfig:
    overrides: dict[str, Any] = {"labels": LABELS, "attn_implementation": "sdpa"}
    if args.num_frames is not None:
        overrides["num_frames"] = args.num_frames
    if args.aggregation is not None:
        overrides["aggregation"] = args.aggregation
    if args.train_spatial != "preset":
        overrides["freeze_spatial"] = args.train_spatial == "frozen"
    return MERConfig.from_preset(args.preset, **overrides)


def naive_config(config: MERConfig, aggregation: str) -> NaiveSLSTTConfig:
    """The official model with the same ViT as ours (and the official LSTM/FC head sizes)."""
    v = config.vision_config
    patch = v.patch_size if isinstance(v.patch_size, int) else v.patch_size[0]
    return NaiveSLSTTConfig(
        image_size=config.image_size,
        patch_size=patch,
        hidden_size=v.hidden_size,
        num_hidden_layers=v.num_hidden_layers,
        num_attention_heads=v.num_attention_heads,
        intermediate_size=v.intermediate_size,
        num_classes=NUM_CLASSES,
        aggregation=aggregation,
        lstm_hidden_size=config.lstm_hidden_size,
        lstm_num_layers=config.lstm_num_layers,
        fc1_out=config.head_hidden_size or 256,
        layer_norm_eps=v.layer_norm_eps,
    )


def timed(step: Callable[[], None], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per step over `steps` timed calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def count_flops(fn: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def random_clips(batch: int, config: MERConfig, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    size = config.image_size
    x = torch.randn(batch, config.num_frames, 3, size, size, generator=g)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=g)
    return x.to(device), y.to(device)


def _result(
    batch: int, train_s: float, infer_s: float, train_peak: float, infer_peak: float,
    train_flops: int, infer_flops: int, model: torch.nn.Module,
) -> dict[str, Any]:
    train_cps, infer_cps = batch / train_s, batch / infer_s
    return {
        "batch_size": batch,
        "train_clips_per_s": round(train_cps, 3),
        "infer_clips_per_s": round(infer_cps, 3),
        "peak_mem_mb": train_peak,
        "infer_peak_mem_mb": infer_peak,
        "train_step_s": round(train_s, 4),
        "infer_step_s": round(infer_s, 4),
        "train_gflop_per_clip": round(train_flops / 1e9, 3),
        "infer_gflop_per_clip": round(infer_flops / 1e9, 3),
        "train_tflops": round(train_flops * train_cps / 1e12, 4),
        "infer_tflops": round(infer_flops * infer_cps / 1e12, 4),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_params": sum(p.numel() for p in model.parameters()),
    }


def measure_ours(args: argparse.Namespace, config: MERConfig, device: torch.device, batch: int) -> dict[str, Any]:
    use_bf16 = args.autocast == "bf16" or (args.autocast == "auto" and device.type == "cuda")
    autocast = (
        (lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16))
        if use_bf16 else contextlib.nullcontext
    )
    x, y = random_clips(batch, config, device, seed=0)
    memory = PeakMemory(device)
    memory.start()
    torch.manual_seed(0)
    model = MERForVideoClassification(config).to(device).train()
    run = torch.compile(model) if args.compile else model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = run(pixel_values=x, labels=y).loss
        loss.backward()
        optimizer.step()

    train_s = timed(train_step, args.steps, args.warmup, device)
    train_peak = memory.peak_mb()
    optimizer.state.clear()  # free the moment estimates before measuring inference
    model.zero_grad(set_to_none=True)
    model.eval()
    memory.checkpoint()

    def infer_step() -> None:
        with torch.inference_mode(), autocast():
            run(pixel_values=x).logits.float()

    infer_s = timed(infer_step, args.steps, args.warmup, device)
    infer_peak = memory.peak_mb()

    # FLOPs of one clip with eager attention (same mathematics; counted by FlopCounterMode on every device).
    model.set_attn_implementation("eager")
    one_x, one_y = x[:1], y[:1]
    model.train()
    train_flops = count_flops(lambda: model(pixel_values=one_x, labels=one_y).loss.backward())
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        infer_flops = count_flops(lambda: model(pixel_values=one_x))
    result = _result(batch, train_s, infer_s, train_peak, infer_peak, train_flops, infer_flops, model)
    result.update(
        attn_implementation="sdpa",
        dtype="bfloat16 autocast" if use_bf16 else "float32",
        compiled=bool(args.compile),
        memory_method=memory.method,
        aggregation=config.aggregation,
        spatial="frozen" if config.freeze_spatial else "trained",
    )
    return result


def measure_naive(args: argparse.Namespace, config: MERConfig, device: torch.device) -> dict[str, Any]:
    batch = args.naive_batch_size
    x, y = random_clips(batch, config, device, seed=1)
    memory = PeakMemory(device)
    memory.start()
    torch.manual_seed(0)
    model = NaiveSLSTT(naive_config(config, args.naive_aggregation)).to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def train_step() -> None:  # the official training loop
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    train_s = timed(train_step, args.steps, args.warmup, device)
    train_peak = memory.peak_mb()
    optimizer.state.clear()  # free the moment estimates before measuring inference
    model.zero_grad(set_to_none=True)
    model.eval()
    memory.checkpoint()

    def infer_step() -> None:  # the official evaluation loop
        with torch.no_grad():
            model(x)

    infer_s = timed(infer_step, args.steps, args.warmup, device)
    infer_peak = memory.peak_mb()
    one_x, one_y = x[:1], y[:1]
    model.train()
    train_flops = count_flops(lambda: F.cross_entropy(model(one_x), one_y).backward())
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        infer_flops = count_flops(lambda: model(one_x))
    result = _result(batch, train_s, infer_s, train_peak, infer_peak, train_flops, infer_flops, model)
    result.update(
        attn_implementation="eager (explicit softmax(QK^T)V)",
        dtype="float32",
        compiled=False,
        memory_method=memory.method,
        aggregation=args.naive_aggregation,
        spatial="frozen (torch.no_grad, one ViT call per frame)",
    )
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = build_config(args)
    batch = args.batch_size or (16 if device.type == "cuda" else 8)
    command = "python bench/throughput.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"[throughput] {args.preset} on {describe_device(device)}: {config.num_frames} frames at "
          f"{config.image_size}px, ours batch {batch}, naive batch {args.naive_batch_size}, "
          f"{args.warmup} warm-up + {args.steps} timed steps", flush=True)

    results: dict[str, Any] = {}
    if not args.skip_naive:  # the naive path first, so that ours never runs on memory the naive one freed
        results["naive"] = measure_naive(args, config, device)
        print(f"[throughput] naive: {results['naive']}", flush=True)
    results["ours"] = measure_ours(args, config, device, batch)
    print(f"[throughput] ours:  {results['ours']}", flush=True)

    payload: dict[str, Any] = {
        "preset": args.preset,
        "device": describe_device(device),
        "date": now_iso(),
        "command": command,
        "config": {
            "num_frames": config.num_frames,
            "image_size": config.image_size,
            "patch_size": config.vision_config.patch_size,
            "hidden_size": config.vision_config.hidden_size,
            "num_hidden_layers": config.vision_config.num_hidden_layers,
            "num_classes": NUM_CLASSES,
            "steps": args.steps,
            "warmup": args.warmup,
            "optimizer": "AdamW (both paths, trainable parameters only)",
            "inputs": "random clips resident on the device (no data loading)",
        },
        "machine": machine_info(device),
        "ours": results["ours"],
    }
    if "naive" in results:
        ours, naive = results["ours"], results["naive"]
        payload["naive"] = naive
        payload["speedup"] = {
            "train": round(ours["train_clips_per_s"] / naive["train_clips_per_s"], 3),
            "infer": round(ours["infer_clips_per_s"] / naive["infer_clips_per_s"], 3),
        }
        payload["ours_beats_naive"] = {k: v > 1.0 for k, v in payload["speedup"].items()}
        print(f"[throughput] speed-up ours/naive: {payload['speedup']}", flush=True)
    if args.json:
        print(f"[throughput] wrote {write_json(args.json, payload)}", flush=True)
    return payload


if __name__ == "__main__":
    main()
