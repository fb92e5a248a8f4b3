"""SLSTT-style micro-expression recognition for transformers.

Importing the package registers the config, the models and the processor with the Auto classes, and marks
them for code export, so that `save_pretrained` writes a folder that loads with `trust_remote_code=True`
where this package is not installed. It also registers the video-classification pipeline, so that
`pipeline("video-classification", model=dir)` runs a saved model without `trust_remote_code` (other video
models keep transformers' own pipeline).
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForVideoClassification
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging as hf_logging

from .configuration_mer import LOCALLY_REGISTERED_PIPELINES, PRESETS, MERConfig
from .modeling_mer import MERForVideoClassification, MERModel, MERPreTrainedModel
from .pipeline_mer import MERVideoClassificationPipeline
from .processing_mer import MERImageProcessor
from .configuration_spotting import MERSpottingConfig
from .modeling_spotting import MERForExpressionSpotting
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


def _register_pipeline(task: str = "video-classification") -> None:
    """Our pipeline for `task`, keeping transformers' default model and input type (and no warning about it)."""
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


_register_pipeline()

__all__ = [
    "PRESETS",
    "MERConfig",
    "MERModel",
    "MERForVideoClassification",
    "MERPreTrainedModel",
    "MERImageProcessor",
    "MERVideoClassificationPipeline",
    "MERSpottingConfig",
    "MERForExpressionSpotting",
    "MERSpottingProcessor",
]
