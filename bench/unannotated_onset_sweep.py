"""Fold-honest sweep of the rule that places the found onset/offset (issue 19 item 5, exploration).

Same folds and models as bench/unannotated.py (train.py's runner, seed 0: the annotated predictions match
its per-clip ones). The expensive spotting (motion profile, apex, apex-referenced displacement on both
sides) is computed once per held-out clip; every rule then places onset/offset from those curves and the
clip is predicted through the processor's own compute_flow path (find_expression swapped for a cached
version in processing_mer), as `processor(frames)` with nothing given. Rules: pNN = the default rule at
plateau NN% (pNN_mK: K frames wider), first90 = the earliest frame at 90%, ends = the clip's first/last
frame, scoreNN = where the smoothed motion score falls to NN% of its apex value.

    python bench/unannotated_onset_sweep.py realistic 6 112 bench/results/unannotated_onset_sweep_realistic_cpu.json
    (arguments: set, folds (0: all), spot_size, output JSON; about 25 min on 2 shared CPU cores)
"""
import atexit
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_info, now_iso  # noqa: E402
from unannotated import clip_frames  # noqa: E402

import modeling_mer.apex_spotting as aps  # noqa: E402
import modeling_mer.processing_mer as pm  # noqa: E402
from modeling_mer.training.recognition import RecognitionTask  # noqa: E402
from modeling_mer.training.run_config import parse  # noqa: E402
from modeling_mer.training.runner import Runner  # noqa: E402

if len(sys.argv) != 5 or sys.argv[1] not in ("demo", "realistic"):
    sys.exit("usage: python bench/unannotated_onset_sweep.py {demo,realistic} FOLDS SPOT_SIZE OUT.json")
mode, nfolds, spot, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
CACHE = {}
STATE = {"clip": None, "rule": None}

def curves(frames, max_side):
    n = len(frames)
    scores = aps.motion_profile(frames, max_side=max_side)  # the processor's apex: find_expression's own rule
    apex = 1 + int(np.argmax(scores[1 : n - 1]))
    grays = aps._grays(frames, max_side)
    fn = aps.flow_function(aps.check_flow_method("farneback"))
    grid = np.mgrid[0:grays[0].shape[0], 0:grays[0].shape[1]].astype(np.float32)

    def d(t):
        return aps._face_mean(aps._registered_residual(fn, grays[apex], grays[t], "affine", grid))

    before = np.array([d(t) for t in range(0, apex)])
    after = np.array([d(t) for t in range(apex + 1, n)])
    return scores, apex, before, after

def plateau_rule(p, margin=0):
    def rule(n, apex, before, after, scores):
        r = np.nonzero(before >= p * before.max())[0]
        on = int(r.max()) if before.max() > 0 else 0
        r = np.nonzero(after >= p * after.max())[0]
        off = apex + 1 + int(r.min()) if after.max() > 0 else n - 1
        return max(0, min(on, apex - 1) - margin), min(n - 1, max(off, apex + 1) + margin)
    return rule

def first_reach(p):  # earliest frame before apex where the displacement is >= p*max (from the ends inward)
    def rule(n, apex, before, after, scores):
        on = int(np.nonzero(before >= p * before.max())[0].min()) if before.max() > 0 else 0
        off = apex + 1 + int(np.nonzero(after >= p * after.max())[0].max()) if after.max() > 0 else n - 1
        return min(on, apex - 1), max(off, apex + 1)
    return rule

def score_rise(p):  # latest frame before apex where the motion score falls below p * its apex value
    def rule(n, apex, before, after, scores):
        s = np.convolve(scores, [0.25, 0.5, 0.25], mode="same")
        top = s[apex]
        below = np.nonzero(s[:apex] <= p * top)[0]
        on = int(below.max()) if len(below) else 0
        below = np.nonzero(s[apex + 1:] <= p * top)[0]
        off = apex + 1 + int(below.min()) if len(below) else n - 1
        return min(on, apex - 1), max(off, apex + 1)
    return rule

RULES = {"p90": plateau_rule(0.9), "p95": plateau_rule(0.95), "p98": plateau_rule(0.98), "p80": plateau_rule(0.8),
         "p70": plateau_rule(0.7), "p50": plateau_rule(0.5), "p90_m3": plateau_rule(0.9, 3), "p90_m6": plateau_rule(0.9, 6),
         "first90": first_reach(0.9), "ends": lambda n, a, b, af, s: (0, n - 1),
         "score20": score_rise(0.2), "score40": score_rise(0.4)}

def cached_find(frames, onset=None, offset=None, *, max_side=112, **kw):
    assert onset is None and offset is None
    key = STATE["clip"]
    if key not in CACHE:
        CACHE[key] = curves(frames, max_side)
    scores, apex, before, after = CACHE[key]
    on, off = RULES[STATE["rule"]](len(frames), apex, before, after, scores)
    return aps.ExpressionWindow(on, apex, off, scores)

pm.find_expression = cached_find

WORKDIR = tempfile.mkdtemp(prefix=f"sweep_{mode}_")
atexit.register(shutil.rmtree, WORKDIR, True)

run = parse(["--dataset", "synthetic", "--synthetic_mode", mode, "--output_dir", WORKDIR,
             "--report_to", "none", "--no_final_model", "--seed", "0"])
runner = Runner.start(run, RecognitionTask())
data = runner.prepare()
folds = runner.folds(data)
chosen = sorted(folds, key=lambda f: (-len(f.test), f.index))[:nfolds] if nfolds else folds
proc = data.processor
proc.spot_size = spot
names = data.info["label_names"]
rows = []
t0 = time.time()
for fold in sorted(chosen, key=lambda f: f.index):
    model, _, _ = runner.train_fold(data, fold, fold.index, runner.selection)
    model = runner.accelerator.unwrap_model(model).eval()
    for row in fold.test:
        meta = data.meta.iloc[row]
        frames, onset, apex, offset = clip_frames(run, meta["clip_id"], names[int(meta["label"])])
        rec = {"clip_id": meta["clip_id"], "label": int(meta["label"]), "n": len(frames), "onset": onset, "apex": apex, "offset": offset}
        STATE["clip"] = meta["clip_id"]
        for way in ["annotated"] + list(RULES):
            given = {"onset": onset, "apex": apex, "offset": offset} if way == "annotated" else {}
            STATE["rule"] = way
            o = proc.compute_flow(frames, **given)
            pv = proc.encode_flow(torch.from_numpy(o["flow"][None]))
            with torch.no_grad():
                rec[way] = int(model(pixel_values=pv).logits.argmax(-1)[0])
            rec[way + "_on"], rec[way + "_apex"], rec[way + "_off"] = int(o["onset"]), int(o["apex"]), int(o["offset"])
        rows.append(rec)
    acc = {w: round(float(np.mean([r[w] == r["label"] for r in rows])), 3) for w in ["annotated"] + list(RULES)}
    print(f"fold {fold.index} clips {len(rows)} t={time.time()-t0:.0f}s", acc, flush=True)
    json.dump({"command": "python bench/unannotated_onset_sweep.py " + " ".join(sys.argv[1:]), "date": now_iso(),
               "machine": machine_info(torch.device("cpu")), "mode": mode,
               "folds": nfolds, "spot_size": spot, "accuracy": acc, "rows": rows}, open(out, "w"), indent=1)
