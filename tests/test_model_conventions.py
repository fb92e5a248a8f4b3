"""The conventions every transformers model keeps, checked on tiny MER models (the project's own tests, written
for this model; transformers' common test files are not copied here).

Config round trip, save/load equality, tuples with return_dict=False, standard attentions/hidden_states
switched from the config or the call, eager vs SDPA, gradient checkpointing with input gradients,
initialisation of every parameter (a checkpoint missing weights), batching equivalence.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForVideoClassification, ViTConfig

from modeling_mer import MERConfig, MERForVideoClassification, MERModel
from modeling_mer.modeling_mer import LinearPatchProjection, MERModelOutput, MERVideoClassifierOutput

AGGREGATIONS = ["transformer", "lstm", "mean"]
LABELS = ["negative", "positive", "surprise"]
SPATIAL_LAYERS, TEMPORAL_LAYERS, HEADS, TOKENS = 2, 2, 2, 1 + (16 // 8) ** 2  # CLS + a 2x2 patch grid
FRAMES = 3


def config(aggregation: str = "transformer", **overrides) -> MERConfig:
    settings = dict(
        vision_config=ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=SPATIAL_LAYERS,
                                num_attention_heads=HEADS, intermediate_size=24),
        num_frames=4, aggregation=aggregation, temporal_hidden_size=16, temporal_num_layers=TEMPORAL_LAYERS,
        temporal_num_attention_heads=HEADS, temporal_intermediate_size=24, lstm_hidden_size=12, lstm_num_layers=2,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
    )  # fmt: skip
    return MERConfig(**(settings | overrides))


def clips(batch: int = 2, frames: int = FRAMES, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def model_of(aggregation: str = "transformer", seed: int = 0, **overrides) -> MERForVideoClassification:
    torch.manual_seed(seed)
    return MERForVideoClassification(config(aggregation, **overrides)).eval()


# --------------------------------------------------------------------------------------------- config
def test_config_round_trip(tmp_path):
    original = config("lstm", head_hidden_size=8, freeze_spatial=True, train_datasets=["synthetic"])
    again = MERConfig.from_dict(original.to_dict())
    assert again.to_dict() == original.to_dict()
    original.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is MERConfig and isinstance(loaded.vision_config, ViTConfig)
    assert loaded.to_diff_dict() == original.to_diff_dict()
    assert (loaded.num_labels, loaded.id2label[2], loaded.lstm_hidden_size) == (3, "surprise", 12)
    assert loaded.to_json_string() == original.to_json_string()
    # the defaults of transformers' common switches are there and round-trip
    flags = config(output_hidden_states=True, return_dict=False)
    flags.save_pretrained(tmp_path / "flags")
    reloaded = MERConfig.from_pretrained(tmp_path / "flags")
    assert reloaded.output_hidden_states is True and reloaded.return_dict is False


def test_config_refuses_bad_geometry_and_unknown_aggregator_in_one_line():
    with pytest.raises(ValueError, match="image_size 20 is not a multiple of patch_size 8") as err:
        config(vision_config={"image_size": 20, "patch_size": 8, "hidden_size": 16, "num_attention_heads": 2})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"aggregation must be one of \['lstm', 'mean', 'transformer'\]"):
        config("gru")


# ------------------------------------------------------------------------------------------ save / load
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_save_load_gives_the_same_model(tmp_path, aggregation):
    model = model_of(aggregation)
    x = clips()
    with torch.no_grad():
        expected = model(x).logits
    model.save_pretrained(tmp_path)
    for loader in (MERForVideoClassification, AutoModelForVideoClassification):
        loaded, info = loader.from_pretrained(tmp_path, output_loading_info=True)
        assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
        assert loaded.state_dict().keys() == model.state_dict().keys()
        for key, value in model.state_dict().items():
            torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, msg=key)
        with torch.no_grad():
            torch.testing.assert_close(loaded.eval()(x).logits, expected, rtol=0, atol=0)
    # the base model loads from the classifier's checkpoint (base_model_prefix "mer") and gives its embedding
    base = MERModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(base(x).pooler_output, model.mer(x).pooler_output, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------ return_dict
def test_return_dict_false_gives_the_same_values_as_a_tuple():
    model = model_of("transformer", attn_implementation="eager")
    x, labels = clips(), torch.tensor([0, 2])
    with torch.no_grad():
        as_dict = model(x, labels=labels, output_attentions=True, output_hidden_states=True)
        as_tuple = model(x, labels=labels, output_attentions=True, output_hidden_states=True, return_dict=False)
    assert isinstance(as_dict, MERVideoClassifierOutput) and type(as_tuple) is tuple
    assert len(as_tuple) == len(as_dict.to_tuple())
    # transformers' order: loss, logits, hidden_states, attentions, then this model's extras
    torch.testing.assert_close(as_tuple[0], as_dict.loss)
    torch.testing.assert_close(as_tuple[1], as_dict.logits)
    assert len(as_tuple[2]) == len(as_dict.hidden_states) and len(as_tuple[3]) == len(as_dict.attentions)
    without_labels = model(x, return_dict=False)
    torch.testing.assert_close(without_labels[0], as_dict.logits)
    # the config's return_dict is the default, for the classifier and the base model
    model.config.return_dict = False
    assert type(model(x)) is tuple and type(model.mer(x)) is tuple
    assert isinstance(model(x, return_dict=True), MERVideoClassifierOutput)
    assert isinstance(model.mer(x, return_dict=True), MERModelOutput)
    base = model.mer(x, return_dict=False)
    torch.testing.assert_close(base[1], model.mer(x, return_dict=True).pooler_output)


# ------------------------------------------------------------------------------ attentions, hidden states
def expected_counts(aggregation: str) -> tuple[int, int]:
    """(attentions, hidden_states) in the standard tuples: the ViT's layers, then the temporal transformer's."""
    temporal = aggregation == "transformer"
    return SPATIAL_LAYERS + temporal * TEMPORAL_LAYERS, SPATIAL_LAYERS + 1 + temporal * (TEMPORAL_LAYERS + 1)


def check_outputs(out, aggregation: str, attentions: bool, hidden: bool, batch: int = 2) -> None:
    n_attentions, n_hidden = expected_counts(aggregation)
    if not attentions:
        assert out.attentions is None and out.spatial_attentions is None and out.temporal_attentions is None
    else:
        assert len(out.attentions) == n_attentions
        assert out.attentions == out.spatial_attentions + (out.temporal_attentions or ())
        for a in out.attentions[:SPATIAL_LAYERS]:
            assert a.shape == (batch, FRAMES, HEADS, TOKENS, TOKENS)
            sums = a.sum(-1)  # rows of real frames sum to 1 (masked frames are zeros)
            assert torch.all(((sums - 1).abs() < 1e-5) | (sums == 0))
        for a in out.attentions[SPATIAL_LAYERS:]:
            assert a.shape == (batch, HEADS, 1 + FRAMES, 1 + FRAMES)
    if not hidden:
        assert out.hidden_states is None and out.spatial_hidden_states is None
    else:
        assert len(out.hidden_states) == n_hidden
        assert out.hidden_states == out.spatial_hidden_states + (out.temporal_hidden_states or ())
        for h in out.hidden_states[: SPATIAL_LAYERS + 1]:
            assert h.shape == (batch, FRAMES, TOKENS, 16)
        for h in out.hidden_states[SPATIAL_LAYERS + 1 :]:
            assert h.shape == (batch, 1 + FRAMES, 16)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_attentions_and_hidden_states_from_the_call_and_from_the_config(aggregation):
    model = model_of(aggregation, attn_implementation="eager")
    x = clips()
    with torch.no_grad():
        check_outputs(model(x), aggregation, attentions=False, hidden=False)
        check_outputs(model(x, output_attentions=True), aggregation, attentions=True, hidden=False)
        check_outputs(model(x, output_hidden_states=True), aggregation, attentions=False, hidden=True)
        base = model.mer(x, output_attentions=True, output_hidden_states=True)
        check_outputs(base, aggregation, attentions=True, hidden=True)
        model.config.output_attentions = True
        model.config.output_hidden_states = True
        check_outputs(model(x), aggregation, attentions=True, hidden=True)
        check_outputs(model(x, output_attentions=False), aggregation, attentions=False, hidden=True)
        check_outputs(model(x, output_hidden_states=False), aggregation, attentions=True, hidden=False)
    # the last hidden state of the standard tuple: for the transformer its sequence after the final norm (the
    # model's last_hidden_state); for lstm/mean the ViT's last layer, before the ViT's final norm (as ViT's own)
    out = model.mer(x)
    if aggregation == "transformer":
        torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state)
    else:
        final_norm = model.mer.spatial_encoder.layernorm
        torch.testing.assert_close(final_norm(out.hidden_states[-1])[:, :, 0], out.frame_embeddings)


def test_frame_embeddings_input_gives_the_temporal_part_only():
    model = model_of("transformer", attn_implementation="eager")
    out = model(frame_embeddings=torch.randn(2, FRAMES, 16), output_attentions=True, output_hidden_states=True)
    assert len(out.attentions) == TEMPORAL_LAYERS and len(out.hidden_states) == TEMPORAL_LAYERS + 1
    assert out.spatial_attentions is None and out.attentions == out.temporal_attentions


# ----------------------------------------------------------------------------------------- eager / sdpa
@pytest.mark.parametrize("aggregation", ["transformer", "lstm"])
def test_eager_and_sdpa_agree_and_attentions_work_under_sdpa(tmp_path, aggregation):
    model_of(aggregation).save_pretrained(tmp_path)
    sdpa = MERForVideoClassification.from_pretrained(tmp_path, attn_implementation="sdpa").eval()
    eager = MERForVideoClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert (sdpa.config._attn_implementation, eager.config._attn_implementation) == ("sdpa", "eager")
    x = clips(batch=3)
    mask = torch.ones(3, FRAMES, dtype=torch.bool)
    mask[1, 2:] = False
    with torch.no_grad():
        for kwargs in ({}, {"frame_mask": mask}):
            a, b = sdpa(x, output_hidden_states=True, **kwargs), eager(x, output_hidden_states=True, **kwargs)
            torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
            for ha, hb in zip(a.hidden_states, b.hidden_states, strict=True):
                torch.testing.assert_close(ha, hb, atol=1e-5, rtol=1e-5)
        # attentions asked of an sdpa model: computed eagerly for that call, the same weights and logits
        a, b = sdpa(x, frame_mask=mask, output_attentions=True), eager(x, frame_mask=mask, output_attentions=True)
    check_outputs(a, aggregation, attentions=True, hidden=False, batch=3)
    for wa, wb in zip(a.attentions, b.attentions, strict=True):
        torch.testing.assert_close(wa, wb, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
    # ... and the model keeps its own attention implementation afterwards
    assert sdpa.config._attn_implementation == "sdpa" and sdpa.config.vision_config._attn_implementation == "sdpa"
    assert sdpa.mer.spatial_encoder.config._attn_implementation == "sdpa"


# ------------------------------------------------------------------------------- gradient checkpointing
def test_gradient_checkpointing_with_input_embeddings_requiring_grads():
    model = model_of("transformer", temporal_dropout=0.0, head_dropout=0.0)
    model.config.vision_config.hidden_dropout_prob = 0.0
    embeddings = model.get_input_embeddings()
    assert isinstance(embeddings, LinearPatchProjection) and embeddings is model.mer.get_input_embeddings()
    assert embeddings is model.mer.spatial_encoder.embeddings.patch_embeddings.projection
    x, labels = clips(), torch.tensor([1, 2])

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        model.zero_grad()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})
        else:
            model.activation_checkpointing_disable()
        model.train()
        model(x, labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = grads(False)
    # reentrant checkpointing gives no gradients to layers whose inputs need none: the standard remedy is
    # enable_input_require_grads, which hooks get_input_embeddings (an adapter setup: only the head trains)
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("classifier") or ".layers." in name)
    model.enable_input_require_grads()
    calls = []
    hook = model.mer.spatial_encoder.layers[0].mlp.register_forward_hook(lambda *args: calls.append(1))
    checkpointed = grads(True)
    hook.remove()
    assert model.is_activation_checkpointing and len(calls) == 2  # the layer ran again in the backward pass
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(checkpointed) == trainable and any("spatial_encoder.layers.0" in n for n in trainable)
    for name in trainable:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5, msg=name)


# ---------------------------------------------------------------------------------------- initialisation
def check_initialised(model: MERForVideoClassification, std: float) -> None:
    for name, param in model.named_parameters():
        assert torch.isfinite(param).all(), name
        if param.dim() > 1 and "lstm" not in name:  # trunc-normal/normal(0, initializer_range)
            assert 0.5 * std < param.std().item() < 2 * std, (name, param.std().item())
            assert param.abs().max().item() < 10 * std, name
        elif param.dim() > 1:  # xavier-uniform LSTM weights
            assert 0.05 < param.std().item() < 1, (name, param.std().item())
        elif name.endswith("bias"):
            if "layernorm" in name or "lstm" in name:
                assert (param == 0).all(), name
        elif "layernorm" in name:
            assert (param == 1).all(), name


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_every_parameter_initialised_when_a_checkpoint_holds_none(tmp_path, aggregation):
    model_of(aggregation).save_pretrained(tmp_path)
    save_file({}, tmp_path / "model.safetensors", metadata={"format": "pt"})
    for _ in range(2):  # uninitialised memory differs between tries; initialised weights never look like it
        loaded, info = MERForVideoClassification.from_pretrained(tmp_path, output_loading_info=True)
        assert len(info["missing_keys"]) == len(loaded.state_dict())
        check_initialised(loaded, std=loaded.config.initializer_range)
        assert torch.isfinite(loaded.eval()(clips()).logits).all()


def test_a_checkpoint_missing_the_patch_projection_gets_it_initialised(tmp_path):
    """The projection (LinearPatchProjection, not a Conv2d) sits inside the ViT, a nested PreTrainedModel:
    transformers initialises missing weights there with the ViT's own _init_weights."""
    model = model_of("mean")
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    prefix = "mer.spatial_encoder.embeddings.patch_embeddings.projection."
    save_file({k: v for k, v in state.items() if not k.startswith(prefix)}, tmp_path / "model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    loaded, info = MERForVideoClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == [prefix + "bias", prefix + "weight"]
    projection = loaded.get_input_embeddings()
    assert 0.01 < projection.weight.std().item() < 0.04 and projection.weight.abs().max().item() < 0.2
    assert (projection.bias == 0).all()
    for key, value in state.items():
        if not key.startswith(prefix):
            torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)


def test_a_new_model_draws_its_weights_as_before():
    """The projection is initialised once (in the encoder), not again by the outer post_init: a seeded model is
    what it was when the projection was initialised beside ViT's post_init (saved runs stay reproducible)."""
    torch.manual_seed(0)
    first = MERForVideoClassification(config("mean")).get_input_embeddings().weight.detach().clone()
    after = torch.rand(1)
    torch.manual_seed(0)
    expected = MERModel(config("mean")).spatial_encoder  # the same draws up to the projection
    torch.testing.assert_close(first, expected.embeddings.patch_embeddings.projection.weight.detach())
    assert first.std().item() > 0.01 and not torch.equal(after, torch.rand(1))


# ------------------------------------------------------------------------------------------- batching
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_a_batch_gives_what_each_clip_gives_alone(aggregation):
    model = model_of(aggregation)
    x = clips(batch=4, seed=3)
    mask = torch.ones(4, FRAMES, dtype=torch.bool)
    mask[2, 1:] = False
    with torch.no_grad():
        batched = model(x, frame_mask=mask).logits
        alone = [model(x[i : i + 1], frame_mask=mask[i : i + 1]).logits[0] for i in range(4)]
    torch.testing.assert_close(batched, torch.stack(alone), atol=1e-5, rtol=1e-5)
