"""Recognition without an annotated apex: accuracy with onset/apex/offset, with onset/offset only, with nothing.

Issue 19, item 5. Fold-honest: train.py's own configuration and runner (`run_config.parse`, `Runner`,
`RecognitionTask`) train each leave-one-subject-out fold's model exactly as `accelerate launch train.py
--dataset synthetic [--synthetic_mode realistic]` does; every held-out clip, rendered whole (all its
frames, also those before the onset and after the offset), is then predicted by its fold's model three ways
through the processor, as `mer-predict` does:

    annotated   processor(frames, onset=, apex=, offset=)       the sheet's timing
    onset_offset processor(frames, onset=, offset=)            SMIC-HS, CASME II's "/": apex spotted inside
    nothing     processor(frames)                              a user's clip: onset, apex, offset spotted

Also reported: how often the spotted apex is the clip's first or last frame, and its mean distance to the
annotated apex (frames). Target (issue 19): `nothing` within 0.05 accuracy of `annotated` on both sets.

    python bench/unannotated.py --json bench/results/unannotated_cpu.json
    python bench/unannotated.py --sets realistic --realistic_folds 26     # every realistic fold (slow on CPU)
    python bench/unannotated.py --sets --train_on_all demo   # train.py's released demo model on its own clips
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE), str(_HERE.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_info, now_iso, write_json  # noqa: E402

WAYS = ("annotated", "onset_offset", "nothing")


def clip_frames(run, clip_id: str, label_name: str):
    """(frames, onset, apex, offset) of a synthetic clip rendered whole, indices into frames."""
    match = re.fullmatch(r"synth_s(\d+)_c(\d+)", clip_id)
    if match is None:
        raise ValueError(f"not a synthetic clip id: {clip_id!r}")
    subject, clip = int(match.group(1)) - 1, int(match.group(2)) - 1
    seed = run.synthetic_seed or 0
    if run.synthetic_mode == "realistic":
        from dataset_scripts._synthetic_realistic import generate_realistic_clip

        rendered = generate_realistic_clip(subject, clip, label_name, seed=seed)
    else:
        from dataset_scripts.synthetic import generate_clip

        rendered = generate_clip(subject, clip, label_name, seed=seed)
    return rendered.frames, rendered.onset, rendered.apex, rendered.offset


def bench_set(mode: str, opts: argparse.Namespace, workdir: Path, train_on_all: bool = False) -> dict:
    from modeling_mer.training.recognition import RecognitionTask
    from modeling_mer.training.run_config import parse
    from modeling_mer.training.runner import Runner

    argv = ["--dataset", "synthetic", "--synthetic_mode", mode,
            "--output_dir", str(workdir / (mode + ("_all" if train_on_all else ""))),
            "--report_to", "none", "--no_final_model", "--seed", str(opts.seed)]
    run = parse(argv)
    task = RecognitionTask()
    runner = Runner.start(run, task)
    started = time.perf_counter()
    data = runner.prepare()
    folds = runner.folds(data)
    prepare_seconds = time.perf_counter() - started
    limit = opts.realistic_folds if mode == "realistic" else opts.demo_folds
    chosen = sorted(folds, key=lambda f: (-len(f.test), f.index))[:limit] if limit else folds
    if train_on_all:  # train.py's released model (its final step: every clip, same recipe), on its own clips
        from modeling_mer.training.checkpoints import FINAL
        from modeling_mer.training.protocols import Fold

        everyone = list(range(len(data.meta)))
        folds = chosen = [Fold(-1, FINAL, "", "", everyone, everyone)]
    processor, names = data.processor, data.info["label_names"]
    rows, train_seconds, predict_seconds = [], 0.0, 0.0
    for fold in sorted(chosen, key=lambda f: f.index):
        begun = time.perf_counter()
        model, _, _ = runner.train_fold(data, fold, fold.index if not train_on_all else fold.name, runner.selection)
        train_seconds += time.perf_counter() - begun
        model = runner.accelerator.unwrap_model(model).eval()
        begun = time.perf_counter()
        for row in fold.test:
            meta = data.meta.iloc[row]
            frames, onset, apex, offset = clip_frames(run, meta["clip_id"], names[int(meta["label"])])
            record = {"clip_id": meta["clip_id"], "subject": meta["subject"], "label": int(meta["label"]),
                      "frames": len(frames), "onset": onset, "apex": apex, "offset": offset}
            calls = {"annotated": {"onset": onset, "apex": apex, "offset": offset},
                     "onset_offset": {"onset": onset, "offset": offset}, "nothing": {}}
            for way, given in calls.items():
                spotted = time.perf_counter()
                out = processor.compute_flow(frames, **given)  # processor(...) is encode_flow(compute_flow(...))
                pixel_values = processor.encode_flow(torch.from_numpy(out["flow"][None]))
                record[f"{way}_seconds"] = time.perf_counter() - spotted
                with torch.no_grad():
                    logits = model(pixel_values=pixel_values.to(runner.accelerator.device)).logits
                record[f"{way}_pred"] = int(logits.argmax(-1)[0])
                record.update({f"{way}_{k}": int(out[k]) for k in ("onset", "apex", "offset")})
            rows.append(record)
        predict_seconds += time.perf_counter() - begun
        runner.print(f"{mode} fold {fold.name}: {len(fold.test)} clips, "
                     + ", ".join(f"{w} {np.mean([r[f'{w}_pred'] == r['label'] for r in rows]):.3f}" for w in WAYS))
    runner.close()
    result = summarise(mode, run, rows, folds, chosen, prepare_seconds, train_seconds, predict_seconds)
    if train_on_all:
        result["model"] = ("train-on-all: train.py's released model (every clip, same recipe) predicting its own "
                           "training clips, as the issue's figures (0.93 / 0.62 / 0.57) were taken; optimistic")
        result["folds_evaluated"] = "none: one model trained on every clip"
    return result


def summarise(mode, run, rows, folds, chosen, prepare_seconds, train_seconds, predict_seconds) -> dict:
    label = np.array([r["label"] for r in rows])
    result = {
        "set": f"synthetic, mode={mode}",
        "train_py": f"train.py --dataset synthetic --synthetic_mode {mode} (its defaults: model {run.model}, "
                    f"{run.epochs} epochs, seed {run.seed})",
        "model": "fold-honest: each held-out clip predicted by the model of its own LOSO fold (never trained on it)",
        "folds_evaluated": f"{len(chosen)} of {len(folds)}" + ("" if len(chosen) == len(folds) else
                                                            " (the folds with the most held-out clips)"),
        "clips": len(rows),
        "accuracy": {w: round(float(np.mean(np.array([r[f'{w}_pred'] for r in rows]) == label)), 4) for w in WAYS},
        "seconds": {"build_and_flow": round(prepare_seconds, 1), "train_folds": round(train_seconds, 1),
                    "predict_three_ways": round(predict_seconds, 1)},
        "processor_seconds_per_clip": {w: round(float(np.mean([r[f"{w}_seconds"] for r in rows])), 3) for w in WAYS},
    }
    result["gap_nothing_vs_annotated"] = round(result["accuracy"]["annotated"] - result["accuracy"]["nothing"], 4)
    result["gap_onset_offset_vs_annotated"] = round(result["accuracy"]["annotated"] - result["accuracy"]["onset_offset"], 4)
    result["target_met"] = bool(result["gap_nothing_vs_annotated"] <= 0.05)
    for way in ("onset_offset", "nothing"):
        found = np.array([r[f"{way}_apex"] for r in rows])
        true = np.array([r["apex"] for r in rows])
        last = np.array([r["frames"] - 1 if way == "nothing" else r["offset"] for r in rows])
        first = np.array([0 if way == "nothing" else r["onset"] for r in rows])
        distance = np.abs(found - true)
        if way == "nothing":
            for bound in ("onset", "offset"):
                gap = np.array([r[f"nothing_{bound}"] - r[bound] for r in rows])
                result[f"{bound}_nothing"] = {"mean_found_minus_annotated_frames": round(float(gap.mean()), 2),
                                              "mean_abs_distance_frames": round(float(np.abs(gap).mean()), 2)}
        result[f"apex_{way}"] = {
            "first_frame": int((found == first).sum()), "last_frame": int((found == last).sum()),
            "mean_abs_distance_frames": round(float(distance.mean()), 2),
            "median_abs_distance_frames": float(np.median(distance)),
            "within_5_frames": round(float((distance <= 5).mean()), 3),
            "range": "the clip's first/last frame" if way == "nothing" else "the annotated onset/offset",
        }
    result["clip_frames"] = {"min": int(min(r["frames"] for r in rows)), "max": int(max(r["frames"] for r in rows))}
    result["per_clip"] = rows
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="*", choices=("demo", "realistic"), default=["demo", "realistic"],
                   help="the sets evaluated fold-honestly")
    p.add_argument("--demo_folds", type=int, default=0, help="demo folds to evaluate (0: all 8)")
    p.add_argument("--realistic_folds", type=int, default=6,
                   help="realistic folds to evaluate, those with the most held-out clips (0: all 26)")
    p.add_argument("--train_on_all", nargs="*", choices=("demo", "realistic"), default=[],
                   help="also evaluate train.py's released (train-on-all) model on its own clips, as in the issue")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output_dir", default=None, help="run folder (default: a temporary one)")
    p.add_argument("--json", default=None, help="write the results here")
    opts = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(opts.output_dir or tmp)
        started = now_iso()
        results = {"benchmark": "recognition without annotations (issue 19 item 5): annotated vs onset/offset only "
                                "vs nothing, fold-honest LOSO",
                   "date": started, "command": "python bench/unannotated.py " + " ".join(argv or sys.argv[1:]),
                   "machine": machine_info(torch.device("cpu")), "sets": {}}
        for mode in opts.sets:
            results["sets"][mode] = bench_set(mode, opts, workdir)
        for mode in opts.train_on_all:
            results["sets"][f"{mode}_train_on_all"] = bench_set(mode, opts, workdir, train_on_all=True)
        results["machine"]["load_average_end"] = machine_info(torch.device("cpu")).get("load_average_1m")
    for mode, res in results["sets"].items():
        print(f"{mode}: {res['clips']} clips, accuracy " + ", ".join(f"{w} {a:.3f}" for w, a in res["accuracy"].items())
              + f"; apex (nothing) first/last frame {res['apex_nothing']['first_frame']}/{res['apex_nothing']['last_frame']}, "
              f"mean |found - annotated| {res['apex_nothing']['mean_abs_distance_frames']}")
    if opts.json:
        write_json(Path(opts.json), results)
    return results


if __name__ == "__main__":
    main()
