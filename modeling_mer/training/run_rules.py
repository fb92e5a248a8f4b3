"""The run's rules: every default that depends on other options, and every refused combination of options.

    apply_defaults(run)   which preset, the learning-rate rule, the real-data and demo defaults, the default
                          protocol, the crop (the tables are run_options')
    check_rules(run)      ValueError naming the option(s) on the first broken rule; the last one is the
                          leakage guard (leakage.check_overlap)

Both run on a parsed `RunConfig` before anything is written (run_config.resolve): a refused run leaves no
folder behind. Standard library only at import time, as run_options (train.py answers before torch).
"""

from __future__ import annotations

import os
from typing import Any

from .leakage import check_overlap, saved_model_config
from .protocols import cli_problem, default_protocol
from .run_options import (
    DEFAULT_EPOCHS,
    FLOW_ONLY,
    PRESET_PATCH_SIZES,
    REAL_DEFAULTS,
    REAL_PRESET,
    SPOT_DEFAULTS,
    SPOT_PRESET,
    SPOTTING_MODEL_TYPE,
    SPOTTING_PRESET_NAMES,
    SYNTHETIC_DEFAULTS,
    RunConfig,
)
from .tracking import resolve_report_to


def apply_defaults(run: RunConfig) -> None:
    """Every default that depends on other options, in one place."""
    if run.task == "spot":  # a small spotter trained from scratch; thresholds need validation subjects (honest)
        if not run.val_subjects and not run.select_on_test:
            run.val_subjects = 1
        if run.model is None:
            run.model = SPOT_PRESET
        _fill(run, SPOT_DEFAULTS)  # any spotter, preset or saved: epochs of a fixed number of windows
    if run.model is None:
        run.model = REAL_PRESET if run.realistic else "tiny"
        if run.realistic and not run.pretrained_spatial:
            _fill(run, REAL_DEFAULTS)
    if not run.realistic and run.model == "tiny":
        _fill(run, SYNTHETIC_DEFAULTS)
    run.epochs = DEFAULT_EPOCHS if run.epochs is None else run.epochs
    if run.lr is None:
        run.lr = 2e-3 if run.model == "tiny" and not run.pretrained_spatial else 1e-4
    if run.resume_from_hub:  # the downloaded run is continued as --resume continues a local one
        run.resume = True
    if run.protocol is None:
        run.protocol = default_protocol(several_datasets=_several(run.dataset))
    if run.crop is None and run.synthetic_mode == "realistic":
        from dataset_scripts._synthetic_realistic import face_box

        x, y, side = face_box("casme2")  # where the generator keeps the face: the benchmark tests motion, not detectors
        run.crop = [x, y, side, side]
    elif run.crop is None:  # a generated set is rendered cropped; a recording needs the face found
        run.crop = "none" if not _spec(run.dataset).needs_data_dir else "dlib"
    run.report_to = resolve_report_to(run.report_to)


def _spec(dataset: str) -> Any:
    from dataset_scripts.registry import get_dataset

    return get_dataset(dataset)


def _fill(run: RunConfig, defaults: dict[str, Any]) -> None:
    for key, value in defaults.items():
        if getattr(run, key) is None and not (key in FLOW_ONLY and run.input_mode == "frames"):
            setattr(run, key, value)


def _several(dataset: str) -> bool:
    """Whether the dataset mixes several datasets (a composite: its subjects are keyed dataset/subject)."""
    return bool(_spec(dataset).parts)


def check_rules(run: RunConfig) -> None:
    """The rules between options; ValueError naming the option(s) on the first broken one."""
    if run.synthetic_mode is not None and run.dataset != "synthetic":
        raise ValueError("--synthetic_mode applies only to --dataset synthetic")
    problem = cli_problem(run.protocol, run.dataset, _several(run.dataset), run.train_on, run.test_on)
    if problem:
        raise ValueError(problem)
    _check_data_dir(run)
    _check_synthetic(run)
    _check_geometry(run)
    if run.align and run.crop not in ("dlib", "dlib-landmarks"):
        raise ValueError(f"--align needs the landmark crop (--crop dlib or dlib-landmarks), not --crop {run.crop}")
    if run.recognizer and run.task != "spot":
        raise ValueError("--recognizer names the emotions of spotted intervals: it applies to --task spot only")
    _check_model_kind(run)
    if run.push_to_hub and not run.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id user/name")
    _check_hub(run)
    run.selection()  # --val_subjects with --select_on_test
    if run.fold is not None and run.aggregate:
        raise ValueError("--fold runs one fold; --aggregate pools finished folds: use one or the other")
    check_overlap(run)


def _check_hub(run: RunConfig) -> None:
    """--push_only, --dry_run, --hub_strategy and --resume_from_hub with the options they need."""
    if run.push_only and not run.hub_model_id:
        raise ValueError("--push_only needs --hub_model_id user/name")
    if run.push_only and (run.push_to_hub or run.resume_from_hub):
        raise ValueError("--push_only pushes a run already on disk: it takes neither --push_to_hub nor --resume_from_hub")
    if run.dry_run and not (run.push_to_hub or run.push_only):
        raise ValueError("--dry_run lists what --push_to_hub or --push_only would upload: give one of them")
    if run.hub_strategy != "end" and not (run.push_to_hub or run.push_only):
        raise ValueError(f"--hub_strategy {run.hub_strategy} says what --push_to_hub uploads: give --push_to_hub")


def _check_data_dir(run: RunConfig) -> None:
    """--data_dir as the dataset's registry entry wants it: none (generated), NAME=DIR per part, or one folder."""
    spec = _spec(run.dataset)
    if not spec.needs_data_dir:
        if run.data_dir:
            raise ValueError(f"--data_dir: the {run.dataset} set is generated, it takes no folder")
    elif spec.parts:
        if isinstance(run.data_dir, dict):
            return
        if not run.data_dir or any("=" not in d for d in run.data_dir):
            raise ValueError(f"--data_dir: {run.dataset} takes NAME=DIR for the parts you have, any of "
                             f"{' '.join(f'{part}=DIR' for part in spec.parts)}")
        run.data_dir = dict(d.split("=", 1) for d in run.data_dir)
    elif not isinstance(run.data_dir, str):
        if not run.data_dir or len(run.data_dir) != 1:
            raise ValueError(f"--data_dir: {run.dataset} needs exactly one folder (the licensed copy you unpacked)")
        run.data_dir = run.data_dir[0]


def _check_synthetic(run: RunConfig) -> None:
    if run.synthetic_mode == "realistic" and run.synthetic_clips is not None:
        raise ValueError("--synthetic_clips: the realistic set has CASME II's clips per subject")
    knobs = {"synthetic_subjects": "num_subjects", "synthetic_clips": "clips_per_subject", "synthetic_seed": "seed"}
    given = {option: getattr(run, option) for option in knobs if getattr(run, option) is not None}
    if given and run.dataset != "synthetic":
        raise ValueError("--synthetic_* options apply only to --dataset synthetic")
    if run.synthetic_clips is not None and run.synthetic_clips % 3:  # the generator's rule, named in one line
        raise ValueError(f"--synthetic_clips: synthetic: clips_per_subject must be a multiple of 3 so that every "
                         f"subject has as many clips of each class, got {run.synthetic_clips}")


def _check_model_kind(run: RunConfig) -> None:
    """--model fits --task: spotting presets or a saved spotter for --task spot, recognition presets or a saved
    recogniser otherwise (a folder's config.json model_type; a Hub id is checked once its config is loaded)."""
    spotting = run.task == "spot"
    if spotting and run.model in SPOTTING_PRESET_NAMES or not spotting and run.model in PRESET_PATCH_SIZES:
        return
    wanted = (f"--task spot takes a spotting preset ({', '.join(SPOTTING_PRESET_NAMES)}) or a saved spotter "
              f"(model_type {SPOTTING_MODEL_TYPE}) as --model" if spotting else
              f"--task {run.task} takes a recognition preset ({', '.join(PRESET_PATCH_SIZES)}) or a saved recogniser as --model")
    if run.model in SPOTTING_PRESET_NAMES or run.model in PRESET_PATCH_SIZES:
        raise ValueError(f"{wanted}; {run.model} is a {'recognition' if spotting else 'spotting'} preset")
    saved = saved_model_config(run.model)
    if saved is None:
        if spotting and os.path.isdir(os.path.expanduser(run.model)):
            raise ValueError(f"{wanted}; the folder {run.model} holds no config.json")
        return  # a Hub id
    kind = saved.get("model_type")
    if spotting != (kind == SPOTTING_MODEL_TYPE):
        raise ValueError(f"{wanted}; {run.model} is a saved model of type {kind!r}")


def _check_geometry(run: RunConfig) -> None:
    """--image_size a multiple of the patch size (of the preset, or of the saved model's config)."""
    if run.image_size is None:
        return
    saved = saved_model_config(run.model)
    patch = PRESET_PATCH_SIZES.get(run.model) or ((saved or {}).get("vision_config") or {}).get("patch_size")
    if patch and run.image_size % patch:
        raise ValueError(f"--image_size {run.image_size} is not a multiple of {run.model}'s patch size {patch}")


__all__ = ["apply_defaults", "check_rules"]
