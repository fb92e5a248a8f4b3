"""SLSTT-style micro-expression recognition for transformers.

Importing the package registers the config, the models and the processor with the Auto classes, and marks
them for code export, so that `save_pretrained` writes a folder that loads with `trust_remote_code=True`
where this package is not installed. It also registers the video-classification pipeline, so that
`pipeline("video-classification", model=dir)` runs a saved model without `trust_remote_code` (other video
models keep transformers' own pipeline).

The console scripts (mer-predict, mer-demo, mer-convert-slstt) parse their command line before these
imports (seconds: torch and transformers), so that `--help` and a bad argument answer at once: while one
of them starts, the registrations wait for `register()`, which the command calls after parsing
(`modeling_mer.cli.commands`). Every other import of the package registers at once, as above.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from typing import Any

_COMMANDS = ("mer-predict", "mer-demo", "mer-convert-slstt")
_EXPORTS = {  # name -> the module that defines it
    "PRESETS": "configuration_mer", "MERConfig": "configuration_mer",
    "MERModel": "modeling_mer", "MERForVideoClassification": "modeling_mer", "MERPreTrainedModel": "modeling_mer",
    "MERImageProcessor": "processing_mer", "MERVideoClassificationPipeline": "pipeline_mer",
    "MERSpottingConfig": "configuration_spotting", "MERForExpressionSpotting": "modeling_spotting",
    "MERSpottingProcessor": "processing_spotting",
}
_registered = False


def register() -> None:
    """Register the configs, models, processors and the pipeline with transformers' Auto classes and mark
    them for code export (once; what `import modeling_mer` does, except while a console script starts)."""
    global _registered
    if _registered:
        return
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForVideoClassification

    from .configuration_mer import MERConfig
    from .configuration_spotting import MERSpottingConfig
    from .modeling_mer import MERForVideoClassification, MERModel
    from .modeling_spotting import MERForExpressionSpotting
    from .processing_mer import MERImageProcessor
    from .processing_spotting import MERSpottingProcessor

    AutoConfig.register(MERConfig.model_type, MERConfig, exist_ok=True)
    AutoModel.register(MERConfig, MERModel, exist_ok=True)
    AutoModelForVideoClassification.register(MERConfig, MERForVideoClassification, exist_ok=True)
    MERConfig.register_for_auto_class()
    MERModel.register_for_auto_class("AutoModel")
    MERForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
    AutoImageProcessor.register(MERConfig, image_processor_classes={"pil": MERImageProcessor}, exist_ok=True)
    MERImageProcessor.register_for_auto_class("AutoImageProcessor")
    # The spotting model (long videos -> intervals): AutoModel, with its own config and processor.
    AutoConfig.register(MERSpottingConfig.model_type, MERSpottingConfig, exist_ok=True)
    AutoModel.register(MERSpottingConfig, MERForExpressionSpotting, exist_ok=True)
    MERSpottingConfig.register_for_auto_class()
    MERForExpressionSpotting.register_for_auto_class("AutoModel")
    AutoImageProcessor.register(MERSpottingConfig, image_processor_classes={"pil": MERSpottingProcessor}, exist_ok=True)
    MERSpottingProcessor.register_for_auto_class("AutoImageProcessor")
    _register_pipeline()
    _registered = True
    import importlib

    for name, module in _EXPORTS.items():  # plain module attributes from now on
        globals()[name] = getattr(importlib.import_module(f".{module}", __name__), name)


def _register_pipeline(task: str = "video-classification") -> None:
    """Our pipeline for `task`, keeping transformers' default model and input type (and no warning about it)."""
    from transformers import AutoModelForVideoClassification
    from transformers.pipelines import PIPELINE_REGISTRY
    from transformers.utils import logging as hf_logging

    from .configuration_mer import LOCALLY_REGISTERED_PIPELINES
    from .pipeline_mer import MERVideoClassificationPipeline

    builtin = PIPELINE_REGISTRY.supported_tasks[task]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "already registered. Overwriting": intended, and on every import
    try:
        PIPELINE_REGISTRY.register_pipeline(
            task,
            pipeline_class=MERVideoClassificationPipeline,
            pt_model=AutoModelForVideoClassification,
            default=builtin.get("default"),
            type=builtin.get("type", "video"),
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    LOCALLY_REGISTERED_PIPELINES.add(task)


def __getattr__(name: str) -> Any:  # the exports, imported on first use while a console script starts
    if name not in _EXPORTS:
        raise AttributeError(f"module 'modeling_mer' has no attribute {name!r}")
    import importlib

    register()
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def _starting_a_command() -> bool:
    return bool(_sys.argv) and _os.path.basename(_sys.argv[0] or "") in _COMMANDS


if not _starting_a_command():
    register()

__all__ = ["register", *_EXPORTS]
