"""Spotting in long videos: stored per-frame features, training, honest selection, the training-free
baseline and the leave-one-subject-out protocol.

    videos -> per-frame motion features, computed once and stored (`FeatureStore`, one .npz per video)
    for each held-out subject:
        training side = the other subjects; validation subjects = a quarter of them (at least one)
        spotter:  train on the rest of the training side; the checkpoint (every `eval_every` steps) and
                  the per-type thresholds that give the best validation F1 are kept
        baseline: flow magnitude on the face (head motion removed), SoftNet post-processing with the
                  per-video relative threshold mean + p (max - mean); p chosen on all training subjects
        both spot the held-out subject's videos -> prediction rows
    pool every fold's rows -> MEGC metrics (spotting_metrics), per fold and per dataset

Nothing about the held-out subject chooses a setting unless `select_on_test=True`, which picks the
checkpoint and thresholds on the held-out videos themselves and is labelled optimistic in the results.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from modeling_mer.configuration_spotting import SPOTTING_PRESETS, MERSpottingConfig
from modeling_mer.evaluation.spotting_metrics import TYPES, compute_spotting_metrics, match_video
from modeling_mer.modeling_spotting import MERForExpressionSpotting
from modeling_mer.processing_spotting import MERSpottingProcessor, scores_to_intervals

from .tasks import Task

LABEL_OF = {"micro": 1, "macro": 2}
THRESHOLD_GRID = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


@dataclass
class SpotVideo:
    """One long video's stored features and annotations; frame numbers are the dataset's (sheet) numbers."""

    dataset: str
    subject: str
    video_id: str
    fps: float
    rate: float
    flow: np.ndarray  # (N, 2, S, S) float16
    numbers: np.ndarray  # (N,) frame number of each feature frame
    magnitude: np.ndarray  # (N,)
    events: list[dict] = field(default_factory=list)

    def labels(self) -> np.ndarray:
        """(N,) 0 background, 1 micro, 2 macro: the type of the event whose [onset, offset] holds the frame
        (micro wins where a micro and a macro overlap: it is the rarer, shorter one)."""
        out = np.zeros(len(self.numbers), dtype=np.int64)
        for kind in ("macro", "micro"):
            for e in self.events:
                if e["type"] == kind:
                    out[(self.numbers >= e["onset"]) & (self.numbers <= e["offset"])] = LABEL_OF[kind]
        return out


# ------------------------------------------------------------------------------------- feature store
class FeatureStore:
    """Per-video features computed once per (processor settings, video) and kept as .npz files."""

    def __init__(self, folder: str | Path | None, processor: MERSpottingProcessor):
        self.folder = Path(folder) if folder is not None else None
        self.processor = processor
        settings = processor.to_dict()
        for key in ("image_processor_type", "processor_class", "auto_map", "_processor_class"):
            settings.pop(key, None)
        self.settings_key = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
        self.computed = self.reused = 0
        self.seconds = 0.0

    def video(self, source: Any, fps: float, key: str, numbers: Sequence[int] | None = None, **info: Any) -> SpotVideo:
        """Features of one video (`source`: frame paths, a video file, or a generated video's frame iterator
        as a callable returning (index, frame) pairs); `numbers` maps frame indices to sheet numbers."""
        path = None
        if self.folder is not None:
            digest = hashlib.sha1(f"{self.settings_key}|{key}".encode()).hexdigest()[:16]
            path = self.folder / f"{digest}.npz"
            if path.is_file():
                try:
                    with np.load(path) as stored:
                        self.reused += 1
                        return self._video(dict(stored), fps, numbers, **info)
                except (OSError, ValueError, KeyError):  # a torn file: compute again
                    path.unlink(missing_ok=True)
        start = time.perf_counter()
        if callable(source):
            feats = list(self.processor.stream_features(source(), fps, where=key))
            features = {"flow": np.stack([f["flow"] for f in feats]).astype(np.float16),
                        "frames": np.asarray([f["frame"] for f in feats], np.int64),
                        "magnitude": np.asarray([f["magnitude"] for f in feats], np.float32)}
        else:
            features = self.processor.video_features(source, fps)
        self.seconds += time.perf_counter() - start
        self.computed += 1
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, flow=features["flow"], frames=features["frames"], magnitude=features["magnitude"])
            tmp.replace(path)
        return self._video(features, fps, numbers, **info)

    def _video(self, features: dict, fps: float, numbers: Sequence[int] | None, **info: Any) -> SpotVideo:
        frames = np.asarray(features["frames"], dtype=np.int64)
        mapped = frames if numbers is None else np.asarray(numbers, dtype=np.int64)[frames]
        return SpotVideo(fps=float(fps), rate=self.processor.rate(fps), flow=np.asarray(features["flow"], np.float16),
                         numbers=mapped, magnitude=np.asarray(features["magnitude"], np.float32), **info)


def videos_from_dataset(rows: Sequence[dict], store: FeatureStore, log: Callable[[str], None] = print) -> list[SpotVideo]:
    """Long-video examples (CONTRACTS §4: dataset, subject, video_id, fps, frames or video, frame_numbers,
    events) -> `SpotVideo`s, features from the store."""
    videos = []
    for k, row in enumerate(rows):
        source = row.get("frames") or row.get("video")
        if not source:
            raise ValueError(f"long video {row.get('video_id')!r}: neither frames nor video")
        numbers = row.get("frame_numbers") or None
        key = f"{row['dataset']}/{row['video_id']}/{row.get('num_frames')}/{source if isinstance(source, str) else source[0]}"
        events = [{"onset": int(e["onset"]), "offset": int(e["offset"]), "apex": int(e.get("apex", -1)),
                   "type": e["type"], "emotion": e.get("emotion", "")} for e in row["events"]]
        videos.append(store.video(source, float(row["fps"]), key, numbers, dataset=row["dataset"],
                                  subject=str(row["subject"]), video_id=str(row["video_id"]), events=events))
        if (k + 1) % 10 == 0:
            log(f"features: {k + 1}/{len(rows)} videos ({store.computed} computed, {store.reused} reused)")
    return videos


# ------------------------------------------------------------------------------------------ training
def half_widths(videos: Sequence[SpotVideo], default: dict[str, float] | None = None) -> dict[str, float]:
    """Half the median duration (seconds) of each type in the training annotations (SoftNet's k)."""
    out = dict(default or {"micro": 0.2, "macro": 0.6})
    for kind in TYPES:
        durations = [(e["offset"] - e["onset"] + 1) / v.fps for v in videos for e in v.events if e["type"] == kind]
        if durations:
            out[kind] = float(np.median(durations)) / 2
    return out


def _window_batch(videos, labels, window, batch_size, rng, processor, augment=True):
    images, targets = [], []
    event_frames = [(vi, np.flatnonzero(lab > 0)) for vi, lab in enumerate(labels)]
    event_frames = [(vi, idx) for vi, idx in event_frames if idx.size]
    for _ in range(batch_size):
        if event_frames and rng.random() < 0.5:  # half the windows hold an expression somewhere
            vi, idx = event_frames[rng.integers(len(event_frames))]
            centre = int(rng.choice(idx))
            n = len(labels[vi])
            start = int(np.clip(centre - rng.integers(0, window), 0, max(0, n - window)))
        else:
            vi = int(rng.integers(len(videos)))
            n = len(labels[vi])
            start = int(rng.integers(0, max(1, n - window + 1)))
        flow = torch.from_numpy(videos[vi].flow[start:start + window].astype(np.float32))
        lab = torch.from_numpy(labels[vi][start:start + window])
        if flow.shape[0] < window:  # a video shorter than the window: pad, padding ignored by the loss
            pad = window - flow.shape[0]
            flow = torch.cat([flow, flow.new_zeros(pad, *flow.shape[1:])])
            lab = torch.cat([lab, lab.new_full((pad,), -100)])
        if augment:
            if rng.random() < 0.5:  # mirror: flip the image and negate u
                flow = flow.flip(-1)
                flow[:, 0] = -flow[:, 0]
            flow = flow * float(rng.uniform(0.8, 1.25))
        images.append(processor.encode(flow))
        targets.append(lab)
    return torch.stack(images), torch.stack(targets)


def class_weights(labels: Sequence[np.ndarray]) -> torch.Tensor:
    """Inverse square-root frequency of background/micro/macro among the training frames (background 1)."""
    counts = np.bincount(np.concatenate(labels), minlength=3).astype(np.float64) + 1.0
    weights = np.sqrt(counts[0] / counts)
    return torch.tensor(np.minimum(weights, 20.0), dtype=torch.float32)


def score_videos(model: MERForExpressionSpotting, processor: MERSpottingProcessor, videos: Sequence[SpotVideo]) -> list[np.ndarray]:
    """Per-frame probabilities (N, 3) of each video, window by window."""
    model.eval()
    return [model.score_video(processor.encode(v.flow.astype(np.float32))) for v in videos]


def spot_intervals(probabilities: np.ndarray, video: SpotVideo, config: MERSpottingConfig) -> list[dict]:
    settings = config.postprocess_settings()
    scores = {kind: probabilities[:, LABEL_OF[kind]] for kind in TYPES}
    return scores_to_intervals(scores, video.numbers, video.rate, settings["thresholds"], settings["half_widths"],
                               settings["smoothing"])


def type_counts(intervals_per_video: Sequence[list[dict]], videos: Sequence[SpotVideo], kind: str) -> tuple[int, int, int]:
    """Pooled TP, FP, FN of one type (the metric's matching)."""
    tp = fp = fn = 0
    for intervals, video in zip(intervals_per_video, videos):
        preds = [r for r in intervals if r["type"] == kind]
        refs = [e for e in video.events if e["type"] == kind]
        matched = len(match_video(preds, refs))
        tp, fp, fn = tp + matched, fp + len(preds) - matched, fn + len(refs) - matched
    return tp, fp, fn


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def choose_thresholds(probabilities: Sequence[np.ndarray], videos: Sequence[SpotVideo], config: MERSpottingConfig) -> tuple[dict[str, float], float]:
    """Per type, the threshold of the grid with the best pooled F1 on `videos` (ties: the higher threshold,
    fewer intervals). Returns the thresholds and the overall F1 they give."""
    chosen, counts = {}, np.zeros(3)
    for kind in TYPES:
        best = (-1.0, 0.0, (0, 0, 0))
        for threshold in THRESHOLD_GRID:
            trial = copy.deepcopy(config)
            setattr(trial, f"{kind}_threshold", float(threshold))
            intervals = [spot_intervals(p, v, trial) for p, v in zip(probabilities, videos)]
            c = type_counts(intervals, videos, kind)
            if (_f1(*c), threshold) >= best[:2]:
                best = (_f1(*c), float(threshold), c)
        chosen[kind] = best[1]
        counts += best[2]
    return chosen, _f1(*counts)


def train_spotter(
    train_videos: Sequence[SpotVideo],
    val_videos: Sequence[SpotVideo],
    config: MERSpottingConfig,
    processor: MERSpottingProcessor,
    steps: int = 600,
    eval_every: int = 100,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[MERForExpressionSpotting, dict[str, Any]]:
    """Train from scratch on `train_videos`; every `eval_every` steps score `val_videos`, choose thresholds on
    them, and keep the checkpoint with the best validation F1 (its thresholds go into the config)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = copy.deepcopy(config)
    for kind, value in half_widths(train_videos).items():
        setattr(config, f"{kind}_half_width", value)
    model = MERForExpressionSpotting(config)
    labels = [v.labels() for v in train_videos]
    weights = class_weights(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    best: dict[str, Any] = {"f1": -1.0, "step": 0, "state": None, "thresholds": None}
    history = []
    for step in range(1, steps + 1):
        model.train()
        images, targets = _window_batch(train_videos, labels, config.window, batch_size, rng, processor)
        loss = model(pixel_values=images, labels=targets, class_weights=weights).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % eval_every == 0 or step == steps:
            probabilities = score_videos(model, processor, val_videos)
            thresholds, f1 = choose_thresholds(probabilities, val_videos, config)
            history.append({"step": step, "loss": float(loss.detach()), "val_f1": f1, "thresholds": thresholds})
            if log:
                log(f"  step {step}: loss {float(loss.detach()):.3f}, validation F1 {f1:.3f} at thresholds {thresholds}")
            if f1 > best["f1"]:
                best = {"f1": f1, "step": step, "state": copy.deepcopy(model.state_dict()), "thresholds": thresholds}
    model.load_state_dict(best["state"])
    for kind, value in best["thresholds"].items():
        setattr(model.config, f"{kind}_threshold", value)
    model.eval()
    return model, {"selected_step": best["step"], "validation_f1": best["f1"], "history": history,
                   "class_weights": weights.tolist()}


# ------------------------------------------------------------------------------------------- baseline
P_GRID = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


def baseline_intervals(video: SpotVideo, p: dict[str, float], widths: dict[str, float], lag: float,
                       smoothing: float = 0.1) -> list[dict]:
    """MDMD/SoftNet-style spotting without training: the mean flow magnitude on the face (head motion
    removed) per frame, smoothed; per type, peaks above mean + p (max - mean) of this video's own curve,
    at least one interval apart; interval = peak +/- half width, centred on the middle of the flow's lag."""
    curve = video.magnitude.astype(np.float64)
    if curve.size == 0:
        return []
    rel = (curve - curve.mean()) / max(1e-12, curve.max() - curve.mean())  # threshold mean + p (max - mean) == rel >= p
    return scores_to_intervals({kind: rel for kind in TYPES}, video.numbers, video.rate, p, widths, smoothing,
                               shift=-lag / 2)


def choose_baseline(videos: Sequence[SpotVideo], widths: dict[str, float], lag: float) -> tuple[dict[str, float], float]:
    """Per type, the p of the grid with the best pooled F1 on `videos` (the training subjects)."""
    chosen, counts = {}, np.zeros(3)
    for kind in TYPES:
        best = (-1.0, 0.0, (0, 0, 0))
        for p in P_GRID:
            intervals = [baseline_intervals(v, {t: float(p) for t in TYPES}, widths, lag) for v in videos]
            c = type_counts(intervals, videos, kind)
            if (_f1(*c), p) >= best[:2]:
                best = (_f1(*c), float(p), c)
        chosen[kind] = best[1]
        counts += best[2]
    return chosen, _f1(*counts)


# --------------------------------------------------------------------------------------------- LOSO
def validation_subjects(subjects: Sequence[str], held_out: str, share: float = 0.25) -> list[str]:
    """A quarter (at least one) of the training subjects, rotating with the held-out one so that every
    subject validates some fold."""
    training = sorted(s for s in set(subjects) if s != held_out)
    if len(training) < 2:
        raise ValueError(f"fold {held_out}: {len(training)} training subject(s); LOSO with validation needs >= 3 subjects")
    count = max(1, int(round(share * len(training))))
    offset = sorted(set(subjects)).index(held_out) % len(training)
    rotated = training[offset:] + training[:offset]
    return sorted(rotated[:count])


def prediction_rows(intervals: list[dict], video: SpotVideo, fold: str, method: str) -> list[dict]:
    return [{"video": video.video_id, "subject": video.subject, "dataset": video.dataset, "onset": r["onset"],
             "offset": r["offset"], "apex": r["apex"], "type": r["type"], "score": r["score"], "fold": fold,
             "method": method} for r in intervals]


def subject_keys(videos: Sequence[SpotVideo]) -> list[str]:
    """The subject of each video as the protocols key it: `dataset/subject` when several datasets are mixed
    (CAS(ME)^2's and SAMM-LV's subjects never merge), else the subject."""
    several = len({v.dataset for v in videos}) > 1
    return [f"{v.dataset}/{v.subject}" if several else v.subject for v in videos]


def row_key(row: dict, videos: Sequence[SpotVideo]) -> tuple[str, str]:
    """(dataset, video) of a prediction row; rows without a dataset column name a video of a single dataset."""
    dataset = row.get("dataset")
    if isinstance(dataset, str) and dataset:
        return dataset, str(row["video"])
    owners = [v.dataset for v in videos if v.video_id == str(row["video"])]
    if len(owners) != 1:
        raise ValueError(f"prediction row of video {row['video']!r} names no dataset, and {len(owners)} datasets have it")
    return owners[0], str(row["video"])


def pooled_metrics(rows: pd.DataFrame, videos: Sequence[SpotVideo], **kwargs: Any) -> dict[str, Any]:
    """MEGC figures of prediction rows over `videos` (every video counted, with or without predictions); per
    fold (the subject key) and per dataset."""
    by_video = {(v.dataset, v.video_id): [] for v in videos}
    for r in rows.to_dict("records"):
        by_video[row_key(r, videos)].append(r)
    several = len({v.dataset for v in videos}) > 1
    return compute_spotting_metrics(
        [by_video[(v.dataset, v.video_id)] for v in videos], [v.events for v in videos],
        video_ids=[f"{v.dataset}/{v.video_id}" if several else v.video_id for v in videos],
        folds=subject_keys(videos), dataset_names=[v.dataset for v in videos], **kwargs,
    )


def run_loso(
    videos: Sequence[SpotVideo],
    config: MERSpottingConfig,
    processor: MERSpottingProcessor,
    methods: Sequence[str] = ("spotter", "baseline"),
    steps: int = 600,
    eval_every: int = 100,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    seed: int = 0,
    select_on_test: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Leave-one-subject-out spotting. Returns {"predictions": DataFrame (all methods), "metrics": {method:
    MEGC figures}, "folds": per-fold selection facts}."""
    subjects = sorted({v.subject for v in videos})
    rows, folds = [], []
    for fold_index, held_out in enumerate(subjects):
        test = [v for v in videos if v.subject == held_out]
        training = [v for v in videos if v.subject != held_out]
        val_subjects = validation_subjects([v.subject for v in videos], held_out)
        fit = [v for v in training if v.subject not in val_subjects]
        val = [v for v in training if v.subject in val_subjects]
        fact: dict[str, Any] = {"fold": held_out, "validation_subjects": val_subjects, "test_videos": len(test)}
        started = time.perf_counter()
        if "spotter" in methods:
            model, info = train_spotter(fit, test if select_on_test else val, config, processor, steps, eval_every,
                                        batch_size, learning_rate, seed + fold_index)
            probabilities = score_videos(model, processor, test)
            for p, v in zip(probabilities, test):
                rows += prediction_rows(spot_intervals(p, v, model.config), v, held_out, "spotter")
            fact["spotter"] = {k: info[k] for k in ("selected_step", "validation_f1")} | {
                "thresholds": {k: getattr(model.config, f"{k}_threshold") for k in TYPES},
                "half_widths": {k: getattr(model.config, f"{k}_half_width") for k in TYPES}}
        if "baseline" in methods:
            widths = half_widths(training)
            p, f1 = choose_baseline(test if select_on_test else training, widths, processor.lag)
            for v in test:
                rows += prediction_rows(baseline_intervals(v, p, widths, processor.lag), v, held_out, "baseline")
            fact["baseline"] = {"p": p, "training_f1": f1, "half_widths": widths}
        fact["seconds"] = round(time.perf_counter() - started, 1)
        folds.append(fact)
        log(f"fold {fold_index + 1}/{len(subjects)} ({held_out}): {fact['seconds']} s")
    frame = pd.DataFrame(rows, columns=["video", "subject", "dataset", "onset", "offset", "apex", "type", "score",
                                        "fold", "method"])
    metrics = {m: pooled_metrics(frame[frame["method"] == m], videos) for m in methods}
    for m in metrics.values():
        m["optimistic"] = bool(select_on_test)
        m["selection"] = "held-out subject (optimistic)" if select_on_test else "validation subjects of the training side"
    return {"predictions": frame, "metrics": metrics, "folds": folds}


def synthetic_videos(subjects: int, videos_per_subject: int, store: FeatureStore, num_frames: int = 900,
                     fps: float = 30.0, seed: int = 0, **kwargs: Any) -> list[SpotVideo]:
    """Generated long videos (`spotting_synthetic.make_long_video`) through the feature store."""
    from modeling_mer.training.spotting_synthetic import make_long_video

    out = []
    for s in range(subjects):
        for k in range(videos_per_subject):
            video = make_long_video(seed * 1000 + s * 50 + k, num_frames=num_frames, fps=fps, **kwargs)
            key = f"synthetic-long/{seed}/{s}/{k}/{num_frames}/{fps}/{sorted(kwargs.items())}"
            box = list(video.face_box)
            processor = store.processor
            saved = processor.crop
            processor.crop = box
            try:
                out.append(store.video(video.frames, fps, key, dataset="synthetic_long", subject=f"s{s:02d}",
                                       video_id=f"s{s:02d}_v{k}", events=video.events))
            finally:
                processor.crop = saved
    return out


def recognise_intervals(intervals: Sequence[dict], sources: dict[str, tuple], recognizer: str) -> list[str]:
    """The recogniser's emotion for each interval (rows with video, onset, apex, offset in the dataset's frame
    numbers); `sources[video]` = (frame paths or a video file, frame numbers or None, fps)."""
    from modeling_mer.cli.predict import load_model, load_processor
    from modeling_mer.cli.predict import predict as predict_clip
    from modeling_mer.video_io import Clip, open_video

    model = load_model(recognizer)
    processor, _ = load_processor(recognizer, model, {})
    emotions = []
    for r in intervals:
        key = (str(r.get("dataset", "")), str(r["video"]))
        source, numbers, _ = sources[key] if key in sources else sources[str(r["video"])]
        onset, offset = int(r["onset"]), int(r["offset"])
        if isinstance(source, str):  # a video file: decode onset..offset (indices are frame numbers)
            with open_video(source) as stream:
                frames = [f for _, f in stream.frames(onset, offset + 1)]
            kept = list(range(onset, onset + len(frames)))
        else:
            numbers = list(numbers) if numbers is not None else list(range(len(source)))
            picked = [(n, p) for n, p in zip(numbers, source) if onset <= n <= offset]
            kept, frames = [n for n, _ in picked], [p for _, p in picked]
        if len(frames) < 2:
            emotions.append("")
            continue
        apex = int(r["apex"]) if kept[0] < int(r["apex"]) <= kept[-1] and int(r["apex"]) in kept else None
        out = predict_clip(Clip(frames, kept, f"{r['video']} {onset}-{offset}"), model, processor,
                           onset=kept[0], apex=apex, offset=kept[-1])
        emotions.append(out["label"])
    return emotions


# ------------------------------------------------------------------------------------------- the Task
CANDIDATE_THRESHOLD = 0.05  # predict keeps every peak this high; a threshold is then a filter on the score


WINDOWS_PER_EPOCH = 800  # training windows per epoch, whatever the data's length (100 steps at batch 8)


class _WindowSampler:
    """The training windows of a fold, drawn afresh every epoch and reproducible from (seed, epoch, item): half of
    them hold an expression frame at a random place in the window, half start at a frame drawn uniformly over
    all training frames. An epoch is a fixed number of windows (`WINDOWS_PER_EPOCH`), so `--epochs` means the
    same amount of training on the generated set and on CAS(ME)^2's 65,000 frames (the bench's recipe: 600
    steps of 8 windows, the checkpoint chosen every 100 on validation subjects, is the default 6 epochs)."""

    def __init__(self, videos: Sequence[SpotVideo], window: int, seed: int):
        self.videos, self.window, self.seed = list(videos), window, seed
        self.labels = [v.labels() for v in self.videos]
        self.with_events = [(vi, np.flatnonzero(lab > 0)) for vi, lab in enumerate(self.labels)]
        self.with_events = [(vi, idx) for vi, idx in self.with_events if idx.size]
        starts = np.array([max(1, len(v.numbers) - window + 1) for v in self.videos], dtype=np.float64)
        self.video_weights = starts / starts.sum()

    def window_of(self, epoch: int, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, epoch, item])
        if self.with_events and rng.random() < 0.5:
            vi, idx = self.with_events[int(rng.integers(len(self.with_events)))]
            n = len(self.labels[vi])
            start = int(np.clip(int(rng.choice(idx)) - int(rng.integers(0, self.window)), 0, max(0, n - self.window)))
        else:
            vi = int(rng.choice(len(self.videos), p=self.video_weights))
            start = int(rng.integers(0, max(1, len(self.labels[vi]) - self.window + 1)))
        flow = torch.from_numpy(self.videos[vi].flow[start:start + self.window].astype(np.float32))
        labels = torch.from_numpy(self.labels[vi][start:start + self.window])
        if flow.shape[0] < self.window:  # a video shorter than the window: padding, ignored by the loss
            pad = self.window - flow.shape[0]
            flow = torch.cat([flow, flow.new_zeros(pad, *flow.shape[1:])])
            labels = torch.cat([labels, labels.new_full((pad,), -100)])
        return flow, labels

    def batch(self, epoch: int, items: Sequence[int]) -> dict[str, torch.Tensor]:
        pairs = [self.window_of(epoch, int(i)) for i in items]
        return {"flow": torch.stack([f for f, _ in pairs]), "labels": torch.stack([lab for _, lab in pairs])}


class _Items(torch.utils.data.Dataset):
    """Item numbers 0..size-1: the loader shuffles and shards them, `SpottingTask.loss` turns them into windows."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"item": torch.tensor(i)}


class _VideoRows(torch.utils.data.Dataset):
    def __init__(self, rows: Sequence[int]):
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"row": torch.tensor(self.rows[i])}


def _filter(frame: pd.DataFrame) -> pd.DataFrame:
    """The intervals of candidate rows: score at or above the row's own (fold's) threshold of its type."""
    if frame.empty:
        return frame
    kept = frame[frame["type"].isin(TYPES)]
    limit = np.where(kept["type"] == "micro", kept["micro_threshold"], kept["macro_threshold"])
    return kept[kept["score"].to_numpy() >= limit]


def starting_point(run: Any) -> tuple[MERSpottingConfig, MERSpottingProcessor, list[str]]:
    """--model -> (the config every fold starts from, the processor of the features, the datasets both in the
    starting model's training data and in this run's evaluation). A spotting preset starts from scratch; a saved
    spotter (folder or Hub id) starts from its weights, and its processor's feature settings are kept (the
    weights were trained on them); crop, flow and head motion are the run's. Anything else is refused in one
    line (run_config refuses what it can at parse time; a Hub id is checked here, once its config is read)."""
    from .run_config import check_overlap

    options = {"crop": run.crop if run.crop is not None else "dlib", "flow": run.flow or "farneback",
               "head_motion": run.head_motion or "affine"}
    if run.model in SPOTTING_PRESETS:
        config = MERSpottingConfig.from_preset(run.model, train_datasets=[run.dataset])
        return config, MERSpottingProcessor(**options), []
    presets = ", ".join(SPOTTING_PRESETS)
    try:
        from transformers import PretrainedConfig

        raw, _ = PretrainedConfig.get_config_dict(run.model)
    except (OSError, ValueError) as err:
        raise ValueError(f"--model {run.model}: not a spotting preset ({presets}) nor a readable saved spotter "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    kind = raw.get("model_type") if isinstance(raw, dict) else None
    if kind != MERSpottingConfig.model_type:
        raise ValueError(f"--model {run.model} is a saved model of type {kind!r}, not a spotter: --task spot takes a "
                         f"spotting preset ({presets}) or a saved spotter (model_type {MERSpottingConfig.model_type})")
    config = MERSpottingConfig.from_pretrained(run.model)
    shared = check_overlap(run, list(config.train_datasets or []))
    config.train_datasets = list(dict.fromkeys([*(config.train_datasets or []), run.dataset]))
    settings: dict[str, Any] = {}
    try:
        saved = MERSpottingProcessor.from_pretrained(run.model)
        settings = {k: getattr(saved, k) for k in ("image_size", "flow_size", "lag", "feature_rate", "motion_unit",
                                                  "crop_margin", "face_threshold", "on_no_face", "track_every",
                                                  "track_tolerance")}
        settings["flow"], settings["head_motion"] = run.flow or saved.flow, run.head_motion or saved.head_motion
    except OSError:  # weights without a processor: the default feature settings
        pass
    processor = MERSpottingProcessor(**{**options, **settings})
    if processor.image_size != config.image_size:
        raise ValueError(f"--model {run.model}: its processor makes {processor.image_size} px motion images, its "
                         f"encoder takes {config.image_size} px")
    return config, processor, shared


class SpottingTask(Task):
    """`train.py --task spot`: intervals in long videos (CAS(ME)^2, SAMM-LV, generated long videos).

    A prediction row is a candidate interval (every peak of the smoothed class probability >= 0.05) with the
    thresholds in force when it was predicted; the thresholds are chosen with the epoch, on the validation
    subjects (on the held-out subject with --select_on_test: optimistic), so an interval is a row whose score
    reaches its type's threshold. Greedy peak picking makes this exact: the peaks kept at a higher
    threshold are the kept candidates above it.
    """

    name = "spot"
    score_name = "f1"
    held_out_score_name = "f1"
    example_word = "candidate intervals"  # what the runner counts in a fold's rows (one marker row per video included)

    def __init__(self) -> None:
        self.thresholds = {"micro": 0.5, "macro": 0.5}
        self.fold_thresholds: list[dict[str, float]] = []

    # ------------------------------------------------------------------------------------------ data
    def prepare(self, run: Any, accelerator: Any) -> Any:
        from dataset_scripts import load_mer_dataset
        from dataset_scripts.registry import dataset_names, get_dataset

        from .tasks import TaskData

        if get_dataset(run.dataset).kind != "long":
            raise ValueError(f"--task spot needs a long-video dataset ({', '.join(dataset_names('long'))}), "
                             f"got --dataset {run.dataset}")
        config, processor, shared = starting_point(run)
        with accelerator.main_process_first():
            raw = load_mer_dataset(run.dataset, data_dir=run.data_dir, cache_dir=run.cache_dir, on_error=run.on_error)
            cache = Path(run.cache_dir) if run.cache_dir else (Path(raw.cache_files[0]["filename"]).parent
                                                                 if raw.cache_files else None)
            store = FeatureStore(cache / "spot_features" if cache else None, processor)
            rows = list(raw)
            videos = videos_from_dataset(rows, store, log=accelerator.print)
        self.recognizer = getattr(run, "recognizer", None)
        self.sources = {(str(r["dataset"]), str(r["video_id"])): (r.get("frames") or r.get("video"),
                                                                  r.get("frame_numbers") or None, float(r["fps"]))
                        for r in rows}
        accelerator.print(f"spotting features: {store.computed} videos computed ({store.seconds:.0f} s), "
                          f"{store.reused} reused")
        if accelerator.device.type == "cpu" and getattr(run, "cpu_threads", None) is None:
            torch.set_num_threads(1)  # a small spotter on stored features: small ops only lose to thread overhead
        for kind, value in half_widths(videos).items():
            setattr(config, f"{kind}_half_width", value)
        meta = pd.DataFrame({"dataset": [v.dataset for v in videos], "subject": [v.subject for v in videos],
                             "video_id": [v.video_id for v in videos], "events": [len(v.events) for v in videos]})
        info = {"videos": videos, "overlap": shared,
                "report": {"spot_features": {"computed": store.computed, "reused": store.reused,
                                             "seconds": round(store.seconds, 1)},
                           "starting_model": run.model}}
        return TaskData(meta=meta, config=config, processor=processor, examples=videos, info=info)

    def describe(self, data: Any) -> str:
        counts = {t: sum(e["type"] == t for v in data.examples for e in v.events) for t in TYPES}
        return (f"{len(data.meta)} videos, {counts['micro']} micro- and {counts['macro']} macro-expressions; "
                f"windows of {data.config.window} frames at {data.processor.feature_rate:g} Hz, {WINDOWS_PER_EPOCH} per epoch")

    # ------------------------------------------------------------------------------------- training
    def build_model(self, run: Any, data: Any, seed: int) -> torch.nn.Module:
        """A fresh spotter of the preset, or the saved spotter given as --model (fine-tuned in every fold)."""
        start = getattr(run, "model", None)
        if start is None or start in SPOTTING_PRESETS:
            return MERForExpressionSpotting(copy.deepcopy(data.config))
        return MERForExpressionSpotting.from_pretrained(start, config=copy.deepcopy(data.config))

    def make_loader(self, run: Any, data: Any, rows: list[int], train: bool, seed: int):
        if train:
            generator = torch.Generator().manual_seed(seed)
            return torch.utils.data.DataLoader(_Items(WINDOWS_PER_EPOCH), batch_size=run.batch_size, shuffle=True,
                                               generator=generator)
        return torch.utils.data.DataLoader(_VideoRows(rows), batch_size=1, shuffle=False)

    def begin_fold(self, run: Any, data: Any, rows: list[int], seed: int) -> None:
        videos = [data.examples[r] for r in rows]
        self.weights = class_weights([v.labels() for v in videos])
        self.widths = half_widths(videos)
        self.sampler = _WindowSampler(videos, data.config.window, seed)
        self.augment = not run.no_augment
        self.thresholds = {"micro": data.config.micro_threshold, "macro": data.config.macro_threshold}

    def loss(self, model: torch.nn.Module, batch: Any, data: Any, epoch: int = 0) -> torch.Tensor:
        """The frame-weighted loss on the windows of the batch's items (drawn for this fold and epoch)."""
        if "item" in batch:
            device = batch["item"].device
            batch = {k: v.to(device) for k, v in self.sampler.batch(epoch, batch["item"].tolist()).items()}
        flow = batch["flow"].float()
        if self.augment:  # per window: mirror (flip W, negate u) and a motion gain in [0.8, 1.25]
            flip = torch.rand(flow.shape[0], device=flow.device) < 0.5
            if bool(flip.any()):
                flow = flow.clone()
                flow[flip] = flow[flip].flip(-1)
                flow[flip, :, 0] = -flow[flip, :, 0]
            gain = torch.empty(flow.shape[0], 1, 1, 1, 1, device=flow.device).uniform_(0.8, 1.25)
            flow = flow * gain
        images = data.processor.encode(flow)
        return model(pixel_values=images, labels=batch["labels"], class_weights=self.weights).loss

    # ----------------------------------------------------------------------------------- predictions
    def predict(self, accelerator: Any, model: torch.nn.Module, loader: Any, data: Any, rows: list[int]) -> pd.DataFrame:
        spotter = accelerator.unwrap_model(model)
        spotter.eval()
        settings = spotter.config.postprocess_settings()
        found = []
        for batch in loader:
            video = data.examples[int(batch["row"][0])]
            probs = spotter.score_video(data.processor.encode(video.flow.astype(np.float32)))
            scores = {kind: probs[:, LABEL_OF[kind]] for kind in TYPES}
            candidates = scores_to_intervals(scores, video.numbers, video.rate,
                                             {t: CANDIDATE_THRESHOLD for t in TYPES}, self.widths, settings["smoothing"])
            rows_of_video = prediction_rows(candidates, video, "", "spotter")
            # one row without an interval names the video, so that a video with no candidate still counts
            rows_of_video.append({"video": video.video_id, "subject": video.subject, "dataset": video.dataset,
                                  "onset": -1, "offset": -1, "apex": -1, "type": "", "score": 0.0})
            found.append(rows_of_video)
        gathered = accelerator.gather_for_metrics(found, use_gather_object=True)
        frame = pd.DataFrame([r for rows_of_video in gathered for r in rows_of_video])
        frame = frame.drop(columns=["fold", "method"], errors="ignore").drop_duplicates()
        frame["micro_threshold"], frame["macro_threshold"] = self.thresholds["micro"], self.thresholds["macro"]
        return frame.reset_index(drop=True)

    def _videos(self, frame: pd.DataFrame, data: Any) -> list[SpotVideo]:
        wanted = {row_key(r, data.examples) for r in frame[["video", "dataset"]].to_dict("records")} \
            if "dataset" in frame else {row_key({"video": name}, data.examples) for name in frame["video"]}
        return [v for v in data.examples if (v.dataset, v.video_id) in wanted]

    def _choose(self, frame: pd.DataFrame, data: Any) -> float:
        """Thresholds of the grid with the best pooled F1 on `frame`'s videos; sets them; returns that F1."""
        videos = self._videos(frame, data)
        counts = np.zeros(3)
        for kind in TYPES:
            rows = frame[frame["type"] == kind]
            best = (-1.0, 0.5, (0, 0, 0))
            for threshold in THRESHOLD_GRID:
                kept = rows[rows["score"] >= threshold]
                per_video = [kept[(kept["video"] == v.video_id) & (kept["dataset"] == v.dataset)].to_dict("records")
                             for v in videos]
                c = type_counts(per_video, videos, kind)
                if (_f1(*c), threshold) >= best[:2]:
                    best = (_f1(*c), float(threshold), c)
            self.thresholds[kind] = best[1]
            counts += best[2]
        return _f1(*counts)

    def epoch_score(self, predictions: pd.DataFrame, data: Any) -> float:
        """Overall F1 on the validation subjects at the thresholds chosen on them (kept for the held-out rows
        predicted next)."""
        return self._choose(predictions, data)

    def held_out_score(self, predictions: pd.DataFrame, data: Any) -> float:
        """--select_on_test: thresholds and epoch chosen on the held-out subject itself (optimistic)."""
        score = self._choose(predictions, data)
        predictions["micro_threshold"], predictions["macro_threshold"] = self.thresholds["micro"], self.thresholds["macro"]
        return score

    def fold_scores(self, predictions: pd.DataFrame, data: Any) -> dict[str, float | None]:
        if predictions.empty:
            return {}
        self.fold_thresholds.append({t: float(predictions[f"{t}_threshold"].iloc[0]) for t in TYPES})
        m = pooled_metrics(_filter(predictions), self._videos(predictions, data))
        return {"f1": m["f1_overall"], "f1_micro": m["f1_micro"], "f1_macro": m["f1_macro"]}

    # ---------------------------------------------------------------------------------------- reports
    def pooled_metrics(self, predictions: pd.DataFrame, data: Any, info: dict[str, Any]) -> dict[str, Any]:
        videos = self._videos(predictions, data)
        intervals = _filter(predictions)
        if getattr(self, "recognizer", None):  # spot, then recognise: each interval named, STRS reported
            intervals = intervals.copy()
            intervals["emotion"] = recognise_intervals(intervals.to_dict("records"), self.sources, self.recognizer)
            predictions.loc[intervals.index, "emotion"] = intervals["emotion"]
        metrics = pooled_metrics(intervals, videos)
        thresholds = predictions.groupby("fold")[["micro_threshold", "macro_threshold"]].first()
        self.fold_thresholds = thresholds.to_dict("records")
        metrics["thresholds_per_fold"] = thresholds.to_dict("index")
        # the training-free baseline on the same folds: p chosen on the other subjects of each fold
        rows = []
        keys = dict(zip(((v.dataset, v.video_id) for v in data.examples), subject_keys(data.examples)))
        for held_out in sorted({keys[(v.dataset, v.video_id)] for v in videos}):
            training = [v for v in data.examples if keys[(v.dataset, v.video_id)] != held_out]
            widths = half_widths(training)
            p, _ = choose_baseline(training, widths, data.processor.lag)
            for v in (v for v in videos if keys[(v.dataset, v.video_id)] == held_out):
                rows += prediction_rows(baseline_intervals(v, p, widths, data.processor.lag), v, held_out, "baseline")
        base = pooled_metrics(pd.DataFrame(rows, columns=["video", "dataset", "onset", "offset", "apex", "type", "score",
                                                          "fold"]), videos)
        metrics["baseline"] = {k: base[k] for k in ("f1_overall", "f1_micro", "f1_macro", "precision", "recall",
                                                    "tp", "fp", "fn")}
        if "per_dataset" in base:
            metrics["baseline"]["per_dataset"] = base["per_dataset"]
        metrics["baseline"]["method"] = "flow magnitude on the face + SoftNet peaks, p chosen on the training subjects"
        return {**info, **metrics, "task": "spot"}

    def summary_line(self, metrics: dict[str, Any]) -> str:
        head = "OPTIMISTIC (selection on the held-out subject): " if metrics.get("optimistic") else ""
        b = metrics["baseline"]
        if "strs" in metrics:
            head += f"STRS {metrics['strs']:.3f} (F1 analysis {metrics['f1_analysis']:.3f}); "
        per_dataset = metrics.get("per_dataset") or {}
        parts = "; ".join(f"{name} F1 {m['f1_overall']:.3f} (baseline "
                          f"{b.get('per_dataset', {}).get(name, {}).get('f1_overall', float('nan')):.3f})"
                          for name, m in sorted(per_dataset.items())) if len(per_dataset) > 1 else ""
        return (f"{head}spotting F1 overall {metrics['f1_overall']:.3f} (micro {metrics['f1_micro']:.3f}, macro "
                f"{metrics['f1_macro']:.3f}; TP {metrics['tp']}, FP {metrics['fp']}, FN {metrics['fn']}); "
                f"baseline on the same folds {b['f1_overall']:.3f} (micro {b['f1_micro']:.3f}, macro {b['f1_macro']:.3f})"
                + (f"; per dataset: {parts}" if parts else ""))

    def write_reports(self, output_dir: Path, predictions: pd.DataFrame, metrics: dict[str, Any]) -> None:
        intervals = _filter(predictions)
        columns = ["video", "onset", "offset", "type", "score", "fold", "epoch", "apex", "subject", "dataset", "emotion"]
        intervals[[c for c in columns if c in intervals]].to_csv(output_dir / "predictions.csv", index=False)
        predictions.to_csv(output_dir / "candidates.csv", index=False)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))

    def card_results(self, metrics: dict[str, Any]) -> list:
        from huggingface_hub import EvalResult

        name = metrics.get("dataset", "spotting")
        return [EvalResult(task_type="video-classification", dataset_type=name, dataset_name=f"{name} (LOSO, pooled)",
                           metric_type="f1", metric_name=f"spotting F1 {kind} (IoU >= 0.5)",
                           metric_value=float(metrics[f"f1_{kind}"]), verified=False)
                for kind in ("overall", "micro", "macro")]

    def model_card(self, run: Any, data: Any, metrics: dict[str, Any], repo_or_path: str) -> Any:
        from huggingface_hub import ModelCard, ModelCardData

        card_data = ModelCardData(library_name="transformers", tags=["micro-expression", "spotting"],
                                  model_name=run.hub_model_id or f"mer-spotting-{run.dataset}",
                                  eval_results=self.card_results(metrics))
        text = (f"# Micro-expression spotter ({run.dataset})\n\n"
                "Per-frame motion on the face -> ViT per frame -> temporal transformer -> background / micro / macro "
                "per frame -> intervals (SoftNet post-processing; thresholds chosen on validation subjects).\n\n"
                f"LOSO over subjects, pooled (MEGC: IoU >= 0.5, one-to-one): F1 overall {metrics['f1_overall']:.3f}, "
                f"micro {metrics['f1_micro']:.3f}, macro {metrics['f1_macro']:.3f}; training-free baseline on the same "
                f"folds {metrics['baseline']['f1_overall']:.3f}.{' OPTIMISTIC: selected on the held-out subject.' if metrics.get('optimistic') else ''}\n\n"
                "```\nmer-predict long.mp4 --model " + repo_or_path + " [--recognizer MODEL] [--json]\n```\n")
        return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{text}")

    def export_model(self, model: torch.nn.Module) -> Any:
        """The released model carries the median of the folds' thresholds and the training half widths."""
        for kind in TYPES:
            values = [t[f"{kind}_threshold"] if f"{kind}_threshold" in t else t[kind] for t in self.fold_thresholds]
            if values:
                setattr(model.config, f"{kind}_threshold", float(np.median(values)))
            setattr(model.config, f"{kind}_half_width", float(self.widths[kind]))
        return model

    def card_run(self, run: Any, data: Any) -> dict[str, Any]:
        return {}
