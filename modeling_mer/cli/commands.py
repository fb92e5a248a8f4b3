"""The console scripts: mer-predict, mer-demo, mer-convert-slstt.

Each parses its command line with standard-library parsers first (`arguments.py`, `demo.build_parser`), so
`--help` and a bad argument answer in a fraction of a second; only then are torch, transformers and the
package's Auto registrations imported (`modeling_mer/__init__.py` defers them while one of these commands
starts: `modeling_mer.register()` runs them here).
"""

from __future__ import annotations

import sys


def _ready() -> None:
    """The imports the parsers did without: transformers, torch and the Auto registrations."""
    import modeling_mer

    modeling_mer.register()


def predict() -> int:
    from .arguments import (
        SPOTTING_MODEL_TYPE,
        build_predict_parser,
        build_spot_parser,
        local_model_type,
        named_model,
    )

    argv = sys.argv[1:]
    if "-h" in argv or "--help" in argv:
        spotting = local_model_type(named_model(argv)) == SPOTTING_MODEL_TYPE
        (build_spot_parser() if spotting else build_predict_parser()).parse_args(argv)  # prints, exits 0
    kind = local_model_type(named_model(argv))
    if kind == SPOTTING_MODEL_TYPE:
        build_spot_parser().parse_args(argv)
    elif kind is not None:  # a local recogniser: its whole command line is known
        build_predict_parser().parse_args(argv)
    else:  # a Hub id (or no --model): a spotter's options are known only once its config is read
        build_predict_parser().parse_known_args(argv)
    _ready()
    from .predict import main

    return main(argv)


def demo() -> int:
    from .demo import build_parser

    build_parser().parse_args(sys.argv[1:])
    _ready()
    from .demo import main

    return main(sys.argv[1:])


def convert_slstt() -> int:
    from .arguments import build_convert_parser

    build_convert_parser().parse_args(sys.argv[1:])
    _ready()
    from .convert_slstt import main

    return main(sys.argv[1:])
