"""A video-classification pipeline that lets the processor sample across the whole clip.

The stock `VideoClassificationPipeline` decodes only the first `num_frames` frames of a file and hands
those to the image processor; a micro-expression model needs the onset, the apex and the offset,
wherever they are. This subclass passes the video itself (path, frame folder or frame list) to
`MERImageProcessor`, optionally with onset/apex/offset frame numbers, and feeds the model only
`pixel_values`. `CUSTOM_PIPELINES` is the entry a model's config needs under `custom_pipelines` so that
`pipeline("video-classification", model=dir, trust_remote_code=True)` picks this class; `import modeling_mer`
registers it with transformers' `PIPELINE_REGISTRY` instead, so that no remote code is needed there.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoVideoProcessor
from transformers.image_processing_utils import BatchFeature
from transformers.pipelines.base import Pipeline
from transformers.pipelines.video_classification import VideoClassificationPipeline
from transformers.utils import logging

from .configuration_mer import check_processor_geometry

logger = logging.get_logger(__name__)

CUSTOM_PIPELINES: dict[str, dict[str, Any]] = {
    "video-classification": {
        "impl": "pipeline_mer.MERVideoClassificationPipeline",
        "pt": ["AutoModelForVideoClassification"],
        "tf": [],
        "type": "video",
    }
}


class MERVideoClassificationPipeline(VideoClassificationPipeline):
    """`pipeline(video)` or `pipeline(video, onset=..., apex=..., offset=...)` -> top-k emotions."""

    # The processor is an image processor (a video processor needs torchvision): never look for a video
    # processor, which would otherwise ask whether to run a `MERVideoProcessor` that does not exist.
    _load_video_processor = False

    def __new__(cls, *args: Any, **kwargs: Any):
        # `import modeling_mer` registers this class for the whole "video-classification" task: any other
        # model (VideoMAE, ...) gets transformers' own pipeline, with its video processor as it would have.
        model = kwargs.get("model", args[0] if args else None)
        if getattr(getattr(model, "config", None), "model_type", "mer") == "mer":
            return super().__new__(cls)
        if kwargs.get("video_processor") is None and isinstance(getattr(model, "name_or_path", None), str):
            try:
                kwargs["video_processor"] = AutoVideoProcessor.from_pretrained(model.name_or_path)
            except Exception as err:  # as transformers' own optional loading: fall back to the image processor
                logger.info("no video processor for %s (%s); using its image processor", model.name_or_path, err)
        return VideoClassificationPipeline(*args, **kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Skip the parent's check against the built-in model list, which logs an error for custom models.
        Pipeline.__init__(self, *args, **kwargs)
        if self.image_processor is None:
            raise ValueError("MERVideoClassificationPipeline needs the model's MERImageProcessor")
        check_processor_geometry(self.model.config, self.image_processor)

    def _sanitize_parameters(  # type: ignore[override]
        self,
        top_k: int | None = None,
        onset: int | None = None,
        apex: int | None = None,
        offset: int | None = None,
        function_to_apply: str | None = None,
        **unused: Any,
    ) -> tuple[dict, dict, dict]:
        if unused:
            raise ValueError(f"unsupported pipeline arguments {sorted(unused)} (num_frames is the processor's)")
        _, _, postprocess = super()._sanitize_parameters(top_k=top_k, function_to_apply=function_to_apply)
        return {"onset": onset, "apex": apex, "offset": offset}, {}, postprocess

    def preprocess(self, video: Any, onset: int | None = None, apex: int | None = None, offset: int | None = None):  # type: ignore[override]
        inputs = self.image_processor(video, onset=onset, apex=apex, offset=offset, return_tensors="pt")
        names = self.image_processor.model_input_names
        return BatchFeature({k: inputs[k] for k in names}, tensor_type="pt").to(self.dtype)
