"""MERConfig / MERModel / MERForVideoClassification on tiny configs (CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForVideoClassification,
    ViTConfig,
    ViTForImageClassification,
)

from modeling_mer import MERConfig, MERForVideoClassification, MERModel
from modeling_mer.aggregators import AGGREGATORS
from modeling_mer.configuration_mer import PRESETS
from modeling_mer.modeling_mer import LinearPatchProjection

LABELS = ["negative", "positive", "surprise"]
AGGREGATIONS = list(AGGREGATORS)  # the registered ones: transformer, lstm, mean


def tiny(aggregation: str = "transformer", **overrides) -> MERConfig:
    return MERConfig.from_preset("tiny", labels=LABELS, aggregation=aggregation, **overrides)


def clip_batch(batch: int = 2, frames: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_shapes_loss_and_outputs(aggregation):
    model = MERForVideoClassification(tiny(aggregation)).eval()
    out = model(clip_batch(), labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3)
    expected = nn.functional.cross_entropy(out.logits, torch.tensor([0, 2]))
    assert torch.allclose(out.loss, expected)
    assert out.frame_embeddings.shape == (2, 8, 64)


def test_class_weights_change_the_loss():
    model = MERForVideoClassification(tiny()).eval()
    x, labels = clip_batch(), torch.tensor([0, 2])
    weights = torch.tensor([1.0, 1.0, 5.0])
    out = model(x, labels=labels, class_weights=weights)
    # each clip's cross-entropy times its class weight, averaged over clips (not over the weights)
    per_clip = nn.functional.cross_entropy(model(x).logits, labels, reduction="none")
    assert torch.allclose(out.loss, (per_clip * weights[labels]).mean())
    assert not torch.allclose(out.loss, nn.functional.cross_entropy(model(x).logits, labels, weight=weights))


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_frame_mask_equals_shorter_clip(aggregation):
    """A masked clip must give exactly what the same clip without its padded frames gives."""
    model = MERForVideoClassification(tiny(aggregation)).eval()
    x = clip_batch()
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.no_grad():
        masked = model(x, frame_mask=mask).logits
        short = model(x[1:, :5]).logits
        full = model(x).logits
    torch.testing.assert_close(masked[1], short[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(masked[0], full[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(masked[1], full[1])


def test_frame_mask_errors():
    model = MERForVideoClassification(tiny()).eval()
    with pytest.raises(ValueError, match="at least one unmasked frame"):
        model(clip_batch(), frame_mask=torch.zeros(2, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="frame_mask must be"):
        model(clip_batch(), frame_mask=torch.ones(2, 7, dtype=torch.bool))
    with pytest.raises(ValueError, match="pixel_values must be"):
        model(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="num_frames=8"):
        model(clip_batch(frames=9))


def test_frames_go_through_the_encoder_as_one_batch():
    model = MERForVideoClassification(tiny()).eval()
    calls = []
    model.mer.spatial_encoder.register_forward_hook(
        lambda mod, args, kw, out: calls.append(args[0].shape), with_kwargs=True
    )
    model(clip_batch(batch=3))
    assert calls == [torch.Size([24, 3, 32, 32])]


@pytest.mark.parametrize("aggregation", ["transformer", "mean"])
def test_sdpa_equals_eager(aggregation):
    model = MERForVideoClassification(tiny(aggregation)).eval()
    assert model.config._attn_implementation == "sdpa"
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[0, 6:] = False
    with torch.no_grad():
        sdpa = model(clip_batch(), frame_mask=mask).logits
        model.set_attn_implementation("eager")
        eager = model(clip_batch(), frame_mask=mask).logits
    torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=1e-5)


def test_attentions_and_hidden_states_on_request():
    model = MERForVideoClassification(tiny()).eval()
    # under sdpa the call falls back to eager attention for that call only (sdpa returns no weights)
    out = model(clip_batch(), output_attentions=True, output_hidden_states=True)
    assert model.config._attn_implementation == "sdpa" and model.config.vision_config._attn_implementation == "sdpa"
    assert len(out.spatial_attentions) == 2 and out.spatial_attentions[0].shape == (2, 8, 4, 17, 17)
    assert len(out.spatial_hidden_states) == 3 and out.spatial_hidden_states[0].shape == (2, 8, 17, 64)
    assert len(out.temporal_attentions) == 1 and out.temporal_attentions[0].shape == (2, 4, 9, 9)
    assert torch.allclose(out.temporal_attentions[0].sum(-1), torch.ones(2, 4, 9))
    # The temporal attention is bidirectional: the first frame attends to later ones.
    assert out.temporal_attentions[0][:, :, 1, 2:].sum() > 0


def test_frozen_spatial_encoder_gets_no_gradients():
    model = MERForVideoClassification(tiny("lstm", freeze_spatial=True))
    model(clip_batch(), labels=torch.tensor([1, 0])).loss.backward()
    spatial = list(model.mer.spatial_encoder.parameters())
    assert all(p.grad is None and not p.requires_grad for p in spatial)
    assert model.classifier.out_proj.weight.grad is not None
    assert model.mer.aggregator.lstm.weight_ih_l0.grad is not None


def test_trainable_spatial_encoder_gets_gradients():
    model = MERForVideoClassification(tiny())
    model(clip_batch(), labels=torch.tensor([1, 0])).loss.backward()
    assert model.mer.spatial_encoder.embeddings.patch_embeddings.projection.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_bf16_autocast_and_activation_checkpointing(aggregation):
    torch.manual_seed(0)
    model = MERForVideoClassification(tiny(aggregation, head_dropout=0.0, temporal_dropout=0.0))
    model.activation_checkpointing_enable()
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(clip_batch(), labels=torch.tensor([0, 1]))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with torch.no_grad():
        full = model(clip_batch()).logits
    torch.testing.assert_close(out.logits.float(), full, atol=0.1, rtol=0.1)


def test_no_convolution_anywhere():
    for aggregation in AGGREGATIONS:
        model = MERForVideoClassification(tiny(aggregation))
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.modules.conv._ConvNd)]
        assert convs == []


def test_linear_patch_projection_equals_strided_conv():
    proj = LinearPatchProjection(3, 16, 8)
    nn.init.normal_(proj.weight)
    nn.init.normal_(proj.bias)
    x = torch.randn(2, 3, 36, 40)  # not a multiple of the patch: the remainder is ignored, as by the conv
    expected = nn.functional.conv2d(x, proj.weight, proj.bias, stride=8)
    torch.testing.assert_close(proj(x), expected, atol=1e-4, rtol=1e-4)


def test_presets():
    assert set(PRESETS) == {"tiny", "mer-micro", "mer-b16-224", "slstt-b16-384"}
    micro = MERConfig.from_preset("mer-micro", labels=LABELS)  # the real-data default: one patch per frame
    assert (micro.image_size, micro.patch_size, micro.num_frames, micro.aggregation) == (32, 32, 4, "mean")
    paper = MERConfig.from_preset("slstt-b16-384", labels=LABELS)
    assert (paper.image_size, paper.num_frames, paper.aggregation) == (384, 11, "lstm")
    assert (paper.lstm_hidden_size, paper.lstm_num_layers, paper.head_hidden_size) == (512, 3, 256)
    assert (
        paper.vision_config.hidden_act == "gelu_pytorch_tanh" and paper.vision_config.layer_norm_eps == 1e-6
    )
    assert paper.freeze_spatial
    base = MERConfig.from_preset("mer-b16-224")
    assert (base.image_size, base.vision_config.hidden_size, base.aggregation) == (224, 768, "transformer")
    with pytest.raises(ValueError, match="unknown preset"):
        MERConfig.from_preset("huge")
    with pytest.raises(ValueError, match="aggregation"):
        MERConfig(aggregation="gru")


def test_config_round_trip(tmp_path):
    config = tiny("lstm", head_hidden_size=16)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MERConfig) and isinstance(loaded.vision_config, ViTConfig)
    ours, theirs = config.to_dict(), loaded.to_dict()
    ours.pop("_name_or_path"), theirs.pop("_name_or_path")
    assert theirs == ours


def test_auto_classes_in_process(tmp_path):
    model = MERForVideoClassification(tiny()).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert isinstance(AutoModelForVideoClassification.from_pretrained(tmp_path), MERForVideoClassification)
    assert isinstance(AutoModel.from_pretrained(tmp_path), MERModel)


REMOTE_LOAD = textwrap.dedent(
    """
    import sys

    class BlockPackage:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("modeling_mer", "dataset_scripts"):
                raise ImportError("blocked: " + name)

    sys.meta_path.insert(0, BlockPackage())
    import torch
    from transformers import AutoImageProcessor, AutoModel, AutoModelForVideoClassification

    folder, ref = sys.argv[1], torch.load(sys.argv[2], weights_only=True)
    model = AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True).eval()
    base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        assert torch.allclose(model(ref["x"]).logits, ref["logits"], atol=1e-6)
        assert torch.allclose(base(ref["x"]).pooler_output, ref["pooled"], atol=1e-6)
    print("OK", type(model).__name__, type(base).__name__, type(processor).__name__, processor.num_frames)
    """
)


def test_save_and_reload_in_fresh_process_without_the_package(tmp_path):
    from modeling_mer import MERImageProcessor

    model = MERForVideoClassification(tiny()).eval()
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    MERImageProcessor(image_size=32, num_frames=8).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_mer.MERModel"
    assert config["auto_map"]["AutoModelForVideoClassification"] == "modeling_mer.MERForVideoClassification"
    impl = config["custom_pipelines"]["video-classification"]["impl"]
    assert impl == "pipeline_mer.MERVideoClassificationPipeline" and (folder / "pipeline_mer.py").is_file()
    x = clip_batch(batch=1)
    with torch.no_grad():
        ref = {"x": x, "logits": model(x).logits, "pooled": model.mer(x).pooler_output}
    torch.save(ref, tmp_path / "ref.pt")
    script = tmp_path / "load.py"
    script.write_text(REMOTE_LOAD)
    # Run from tmp_path with a clean path so that the repository (and its package) is not importable.
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(folder), str(tmp_path / "ref.pt")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK MERForVideoClassification MERModel MERImageProcessor 8" in result.stdout


def save_tiny_vit(folder: Path) -> None:
    """A ViT image classifier checkpoint as the Hub holds them (with a head), matching the tiny preset."""
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
    )
    ViTForImageClassification(config).save_pretrained(folder)


def test_pretrained_spatial_from_local_vit(tmp_path):
    save_tiny_vit(tmp_path / "vit")
    reference = AutoModel.from_pretrained(tmp_path / "vit").eval()

    model = MERForVideoClassification.from_pretrained_spatial(str(tmp_path / "vit"), tiny()).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ours = model.mer.spatial_encoder(x).last_hidden_state
        theirs = reference(x).last_hidden_state
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)

    # Another image size: position embeddings are interpolated, not re-initialised.
    bigger = MERForVideoClassification.from_pretrained_spatial(
        str(tmp_path / "vit"), tiny(vision_config={"image_size": 48})
    )
    pos = bigger.mer.spatial_encoder.embeddings.position_embeddings
    assert pos.shape == (1, 37, 64)
    torch.testing.assert_close(pos[:, 0], reference.embeddings.position_embeddings[:, 0])
    assert bigger(clip_batch(size=48)).logits.shape == (2, 3)


def test_pretrained_spatial_rejects_a_checkpoint_that_does_not_fit(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises((ValueError, OSError)):
        MERForVideoClassification.from_pretrained_spatial(str(tmp_path / "bert"), tiny())
    with pytest.raises(OSError, match="could not load a ViT checkpoint"):
        MERForVideoClassification.from_pretrained_spatial(str(tmp_path / "missing"), tiny())


def test_pretrained_spatial_lists_missing_weights(tmp_path):
    from safetensors.torch import load_file, save_file

    save_tiny_vit(tmp_path / "vit")
    weights = tmp_path / "vit" / "model.safetensors"
    state = load_file(weights)
    dropped = [k for k in state if k.endswith("layernorm_after.weight") and ".1." in k]
    assert len(dropped) == 1
    save_file({k: v for k, v in state.items() if k not in dropped}, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="missing"):
        MERForVideoClassification.from_pretrained_spatial(str(tmp_path / "vit"), tiny())


def test_model_folder_path_is_not_a_package_path():
    # The files that ship with a model import each other only relatively (code export follows only those).
    root = Path(__file__).resolve().parents[1] / "modeling_mer"
    import re

    for name in ("configuration_mer.py", "modeling_mer.py", "processing_mer.py"):
        text = (root / name).read_text()
        assert not re.search(r"^\s*(from|import) (modeling_mer|dataset_scripts)\b", text, re.M), name


def test_modeling_mer_folder_holds_exactly_what_ships_with_a_model(tmp_path):
    import re

    # The layout rule: modeling_mer/'s flat modules are the files save_pretrained exports for
    # trust_remote_code (model + processor); everything else lives in a subpackage named for its concern.
    from modeling_mer import MERImageProcessor

    MERForVideoClassification(tiny()).save_pretrained(tmp_path)
    MERImageProcessor(image_size=32, num_frames=2).save_pretrained(tmp_path)
    exported = {p.name for p in tmp_path.glob("*.py")}
    root = Path(__file__).resolve().parents[1] / "modeling_mer"
    flat = {p.name for p in root.glob("*.py")} - {"__init__.py"}
    # The spotting model's flat files ship with the spotting model (its own tests export it).
    spotting_model = {"configuration_spotting.py", "modeling_spotting.py", "processing_spotting.py"}
    assert exported == flat - spotting_model
    for name in flat:  # relative imports only, and only of flat siblings
        text = (root / name).read_text()
        assert not re.search(r"^\s*(from|import) (modeling_mer|dataset_scripts)\b", text, re.M), name
        assert not re.search(r"^\s*from \.\.", text, re.M), name


def test_no_import_cycle_between_packages():
    # dataset_scripts builds on modeling_mer (class orders, apex spotting). The shipped files and the package's
    # import never import it; the cards and the runner read the dataset registry, whose import (that of the
    # dataset_scripts package) imports nothing of modeling_mer, torch or datasets: no cycle.
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1] / "modeling_mer"
    for path in [*root.glob("*.py")]:  # what ships with a model, and the package's import
        assert not re.search(r"^\s*(from|import) dataset_scripts", path.read_text(), re.M), path
    code = "import sys, dataset_scripts.registry; print(sorted(m for m in sys.modules if m.startswith(('modeling_mer', 'torch', 'datasets'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root.parent, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
