"""The temporal-aggregator registry: one class plus one registration line makes a working aggregation."""

from __future__ import annotations

import pytest
import torch

from modeling_mer import MERConfig, MERForVideoClassification
from modeling_mer.aggregators import AGGREGATORS, AggregatorOutput, TemporalAggregator, register_aggregator
from modeling_mer.configuration_mer import AGGREGATIONS

LABELS = ["negative", "positive", "surprise"]


class MaxAggregator(TemporalAggregator):
    """The toy: element-wise max over the real frames, then a learned linear map (so a step changes something)."""

    name = "max"
    description = "element-wise maximum over the frames, then a linear map"

    def __init__(self, config):
        super().__init__(config)
        self.proj = torch.nn.Linear(config.vision_config.hidden_size, 24)

    @classmethod
    def output_size(cls, config) -> int:
        return 24

    def forward(self, frames, frame_mask=None, output_hidden_states=False, output_attentions=False):
        filled = frames if frame_mask is None else frames.masked_fill(~frame_mask[..., None], float("-inf"))
        return AggregatorOutput(pooled=self.proj(filled.amax(1)), sequence=frames)


@pytest.fixture
def registered_max():
    register_aggregator(MaxAggregator)  # the one registration line
    yield MaxAggregator
    del AGGREGATORS["max"]


def test_the_builtin_names_come_from_the_registry():
    assert list(AGGREGATORS) == ["transformer", "lstm", "mean"] and AGGREGATIONS == AGGREGATORS.keys()
    for name, cls in AGGREGATORS.items():
        assert cls.name == name and cls.description and issubclass(cls, TemporalAggregator)


def test_a_registered_aggregator_trains_saves_and_loads(registered_max, tmp_path):
    assert "max" in AGGREGATIONS  # the live view every consumer reads
    torch.manual_seed(0)
    config = MERConfig.from_preset("tiny", labels=LABELS, aggregation="max", num_frames=4)
    model = MERForVideoClassification(config)
    assert isinstance(model.mer.aggregator, MaxAggregator) and model.classifier.out_proj.in_features == 24
    x, labels = torch.randn(2, 4, 3, 32, 32), torch.tensor([0, 2])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    before = model.mer.aggregator.proj.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(x, frame_mask=mask, labels=labels).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.mer.aggregator.proj.weight)
    model.eval().save_pretrained(tmp_path)
    loaded = MERForVideoClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.aggregation == "max" and "mer.aggregator.proj.weight" in loaded.state_dict()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, frame_mask=mask).logits, model(x, frame_mask=mask).logits)
    # the mask is honoured: padding frames change nothing
    with torch.no_grad():
        torch.testing.assert_close(model(x[1:, :2]).logits[0], model(x, frame_mask=mask).logits[1])


def test_unregistered_names_and_bad_classes_are_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"aggregation must be one of \['lstm', 'mean', 'transformer'\], got 'max'"):
        MERConfig.from_preset("tiny", aggregation="max")

    class Nameless(TemporalAggregator):
        description = "x"

    with pytest.raises(ValueError, match="needs a class attribute `name`"):
        register_aggregator(Nameless)
    with pytest.raises(TypeError, match="TemporalAggregator subclass"):
        register_aggregator(torch.nn.Linear)


def test_the_official_key_layout_is_kept():
    """SLSTT-LSTM's converted weights live at mer.aggregator.lstm.*; the mean has no aggregator weights."""
    keys = MERForVideoClassification(MERConfig.from_preset("tiny", aggregation="lstm")).state_dict().keys()
    assert {k for k in keys if k.startswith("mer.aggregator.")} == {
        f"mer.aggregator.lstm.{kind}_{part}_l{layer}"
        for kind in ("weight", "bias") for part in ("ih", "hh") for layer in range(2)
    }  # fmt: skip
    keys = MERForVideoClassification(MERConfig.from_preset("tiny", aggregation="mean")).state_dict().keys()
    assert not any(k.startswith("mer.aggregator.") for k in keys)


def test_a_registered_aggregator_is_explained_by_gradient_x_input(registered_max):
    from modeling_mer.cli.explain import explain

    torch.manual_seed(0)
    config = MERConfig.from_preset("tiny", labels=LABELS, aggregation="max", num_frames=4)
    config._attn_implementation = "eager"
    model = MERForVideoClassification(config).eval()
    result = explain(model, torch.randn(1, 4, 3, 32, 32), target=1)
    assert result.temporal_method == "gradient x input norm per frame"
    assert result.temporal.shape == (4,) and abs(float(result.temporal.sum()) - 1) < 1e-5
    assert result.spatial.shape == (4, 4, 4)
