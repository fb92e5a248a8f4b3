"""Print the markdown results table of every `bench/results/throughput_*.json` (for the READMEs).

    python bench/table.py [RESULTS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEADER = (
    "| result file | preset | setting (ours) | batch ours / naive | train clips/s ours / naive "
    "| infer clips/s ours / naive | speed-up train / infer | peak MiB train, ours / naive | device, threads, load | date |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _num(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def row(name: str, d: dict[str, Any]) -> str:
    """One table row; `-` in the naive columns of an ours-only run."""
    o, n, c = d["ours"], d.get("naive"), d["config"]
    setting = f"{c['num_frames']} frames at {c['image_size']} px, {o['aggregation']}, ViT {o['spatial']}"
    if o.get("compiled"):
        setting += ", compiled"
    speed = d.get("speedup", {})
    naive = (lambda key: _num(n[key])) if n else (lambda key: "-")
    return (
        f"| `{name}` | {d['preset']} | {setting} | {o['batch_size']} / {n['batch_size'] if n else '-'} "
        f"| {_num(o['train_clips_per_s'])} / {naive('train_clips_per_s')} "
        f"| {_num(o['infer_clips_per_s'])} / {naive('infer_clips_per_s')} "
        f"| {speed.get('train', '-')}x / {speed.get('infer', '-')}x "
        f"| {o['peak_mem_mb']:.0f} / {naive('peak_mem_mb')} "
        f"| {d['device']}, {d['machine']['torch_threads']} thr, load {d['machine'].get('load_average_1m', '?')} "
        f"| {d['date'][:10]} |"
    )


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent / "results"
    files = sorted(folder.glob("throughput_*.json"))
    if not files:
        raise SystemExit(f"no throughput_*.json in {folder}")
    table = "\n".join([HEADER, *(row(p.name, json.loads(p.read_text())) for p in files)])
    print(table)
    return table


if __name__ == "__main__":
    main()
