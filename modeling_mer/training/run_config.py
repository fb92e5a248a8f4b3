"""The run configuration's entry: train.py's command line, checked and resolved once into a typed `RunConfig`.

    parser = build_parser(description)      # every option, with `type=` checks that refuse bad values at parse time
    run = resolve(parser.parse_args(argv), parser)   # the defaults policy, then the rules between options
    run = parse(argv)                       # the two lines above in one call (bench/ uses it)

The parts live in three modules, each of one concern: `run_options` (the options, `RunConfig` and the
defaults tables), `run_rules` (`apply_defaults`: every default that depends on other options;
`check_rules`: every refused combination) and `leakage` (the train/evaluation dataset overlap guard).
Both policies run before anything is written: a refused run leaves no folder behind. This module joins them
and names what train.py, the tests and bench/ import from here. All four import only the standard library
(and the stdlib-only registries) at import time, so `train.py --help` and a refused argument answer in well
under a second, before torch and transformers are imported.
"""

from __future__ import annotations

import argparse

from .leakage import LeakageError, check_overlap, overlap
from .run_options import (
    ADDED_OPTIONS,
    CROP_CHOICES,
    PRESET_PATCH_SIZES,
    REAL_DEFAULTS,
    REAL_PRESET,
    SPOT_DEFAULTS,
    SPOT_PRESET,
    SPOTTING_PRESET_NAMES,
    SYNTHETIC_DEFAULTS,
    RunConfig,
    build_parser,
)
from .run_rules import apply_defaults, check_rules


def resolve(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> RunConfig:
    """The parsed options -> a complete RunConfig: defaults policy, then the rules; `parser.error` on a problem."""
    run = RunConfig(**vars(ns))
    try:
        apply_defaults(run)
        check_rules(run)
    except ValueError as err:
        parser.error(str(err))
    return run


def parse(argv: list[str] | None = None, description: str | None = None) -> RunConfig:
    """train.py's command line (`argv`, default sys.argv[1:]) -> a resolved RunConfig; exit status 2 on a problem."""
    parser = build_parser(description)
    return resolve(parser.parse_args(argv), parser)


__all__ = [
    "ADDED_OPTIONS",
    "CROP_CHOICES",
    "PRESET_PATCH_SIZES",
    "REAL_DEFAULTS",
    "REAL_PRESET",
    "SPOTTING_PRESET_NAMES",
    "SPOT_DEFAULTS",
    "SPOT_PRESET",
    "SYNTHETIC_DEFAULTS",
    "RunConfig",
    "apply_defaults",
    "build_parser",
    "check_overlap",
    "check_rules",
    "LeakageError",
    "overlap",
    "parse",
    "resolve",
]
