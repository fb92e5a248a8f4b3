"""SLSTT-style micro-expression recognition for transformers.

Importing the package registers the config, the models and the processor with the Auto classes, and marks
them for code export, so that `save_pretrained` writes a folder that loads with `trust_remote_code=True`
where this package is not installed.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForVideoClassification

from .configuration_mer import PRESETS, MERConfig
from .modeling_mer import MERForVideoClassification, MERModel, MERPreTrainedModel
from .processing_mer import MERImageProcessor

AutoConfig.register(MERConfig.model_type, MERConfig, exist_ok=True)
AutoModel.register(MERConfig, MERModel, exist_ok=True)
AutoModelForVideoClassification.register(MERConfig, MERForVideoClassification, exist_ok=True)
MERConfig.register_for_auto_class()
MERModel.register_for_auto_class("AutoModel")
MERForVideoClassification.register_for_auto_class("AutoModelForVideoClassification")
AutoImageProcessor.register(MERConfig, image_processor_classes={"pil": MERImageProcessor}, exist_ok=True)
MERImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = [
    "PRESETS",
    "MERConfig",
    "MERModel",
    "MERForVideoClassification",
    "MERPreTrainedModel",
    "MERImageProcessor",
]
