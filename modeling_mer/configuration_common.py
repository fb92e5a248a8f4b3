"""What the recogniser's and the spotter's configs share: the nested ViT's geometry and the temporal transformer's widths.

Both `MERConfig` and `MERSpottingConfig` describe the spatial encoder by a nested `ViTConfig` and the
temporal transformer by the same field names (`temporal_hidden_size`, `temporal_intermediate_size`,
`temporal_num_attention_heads`), so the two read and settle them here, in one place. Imports nothing
(shipped with either model for trust_remote_code, torch-free like the configs).
"""

from __future__ import annotations


class VisionTemporalConfigMixin:
    """For a `PreTrainedConfig` with a nested `vision_config` (a ViTConfig) and the temporal transformer's fields."""

    @property
    def image_size(self) -> int:
        """The ViT's square input side (ViTConfig allows a pair)."""
        size = self.vision_config.image_size
        return size if isinstance(size, int) else size[0]

    @property
    def patch_size(self) -> int:
        """The ViT's square patch side (ViTConfig allows a pair)."""
        patch = self.vision_config.patch_size
        return patch if isinstance(patch, int) else patch[0]

    def _settle_temporal_widths(self, check_heads: bool = True) -> None:
        """Fill the temporal widths left as None (the spatial width, and 4 times that for the MLP); with
        `check_heads`, refuse a width that the attention heads do not divide."""
        if self.temporal_hidden_size is None:
            self.temporal_hidden_size = self.vision_config.hidden_size
        if self.temporal_intermediate_size is None:
            self.temporal_intermediate_size = 4 * self.temporal_hidden_size
        if check_heads and self.temporal_hidden_size % self.temporal_num_attention_heads:
            raise ValueError(
                f"temporal_hidden_size ({self.temporal_hidden_size}) must be divisible by "
                f"temporal_num_attention_heads ({self.temporal_num_attention_heads})"
            )


__all__ = ["VisionTemporalConfigMixin"]
