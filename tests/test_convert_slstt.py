"""Conversion of official SLSTT checkpoints, checked against the golden fixtures of the official code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from modeling_mer import MERForVideoClassification
from modeling_mer.cli.convert_slstt import (
    ConversionError,
    convert,
    infer_config,
    load_official_state_dict,
    main,
)

REFERENCE = Path(__file__).resolve().parent / "data" / "reference"


def golden(variant: str) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, dict[str, str]]:
    path = REFERENCE / f"slstt_tiny_{variant}_golden.safetensors"
    if not path.is_file():
        pytest.skip(f"reference fixture {path} not present")
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    state = load_file(str(path))
    return state, state.pop("__input__"), state.pop("__expected_logits__"), metadata


def write_official_checkpoint(state: dict[str, torch.Tensor], path: Path) -> Path:
    """The official `.pth.tar` form: a pickle with the DataParallel (`module.`) state dict and training state."""
    assert all(k.startswith("module.") for k in state)
    torch.save(
        {
            "epoch": 40,
            "arch": "vit_lstm",
            "state_dict": state,
            "best_acc1": torch.tensor(61.5),
            "best_f1": 0.55,
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "momentum": 0.9, "params": [0, 1]}]},
        },
        path,
    )
    return path


@pytest.mark.parametrize("variant", ["lstm", "mean"])
def test_golden_logits_through_the_cli(variant, tmp_path):
    state, x, expected, meta = golden(variant)
    src = write_official_checkpoint(state, tmp_path / f"slstt_{variant}.pth.tar")
    out = tmp_path / "converted"
    heads = meta["num_attention_heads"]
    assert (
        main(
            [
                str(src),
                str(out),
                "--aggregation",
                variant,
                "--num_attention_heads",
                heads,
                "--dataset",
                "casme2",
            ]
        )
        == 0
    )

    model = MERForVideoClassification.from_pretrained(out).eval()
    with torch.no_grad():
        logits = model(x).logits
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)

    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {
        "0": "disgust",
        "1": "happiness",
        "2": "repression",
        "3": "surprise",
        "4": "others",
    }
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()
    assert config["train_datasets"] == ["casme2"]  # the authors' weights: the card says research use only
    assert "license_name: mer-datasets-research-only" in (out / "README.md").read_text()
    vision = config["vision_config"]
    assert (vision["hidden_size"], vision["patch_size"], vision["image_size"]) == (
        int(meta["hidden_size"]),
        int(meta["patch_size"]),
        int(meta["image_size"]),
    )
    assert vision["num_hidden_layers"] == int(meta["num_hidden_layers"])
    assert vision["intermediate_size"] == int(meta["intermediate_size"])
    if variant == "lstm":
        assert (config["lstm_hidden_size"], config["lstm_num_layers"]) == (
            int(meta["lstm_hidden"]),
            int(meta["lstm_layers"]),
        )
        assert config["head_hidden_size"] == int(meta["fc1_out"])


@pytest.mark.parametrize("form", ["bare", "safetensors"])
def test_other_input_forms(form, tmp_path):
    state, x, expected, meta = golden("mean")
    if form == "bare":
        src = tmp_path / "bare.pth"
        torch.save({k.removeprefix("module."): v for k, v in state.items()}, src)
    else:
        src = tmp_path / "weights.safetensors"
        save_file(state, src)
    model = convert(
        src, "mean", ["negative", "positive", "surprise", "x", "y"], int(meta["num_attention_heads"])
    )
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, expected, atol=1e-5, rtol=1e-5)


def test_full_size_shapes_infer_the_paper_config():
    shapes = json.loads((REFERENCE / "slstt_full_state_dict_shapes.json").read_text())["LSTM"]
    state = {k.removeprefix("module."): torch.empty(v) for k, v in shapes.items()}
    config = infer_config(state, "lstm", None, None)
    assert config.image_size == 384 and config.vision_config.patch_size == 16
    assert config.vision_config.num_hidden_layers == 12 and config.vision_config.num_attention_heads == 12
    assert (config.lstm_hidden_size, config.lstm_num_layers, config.head_hidden_size, config.num_labels) == (
        512,
        3,
        256,
        5,
    )


def test_unknown_and_missing_keys_are_errors(tmp_path):
    state, *_ = golden("lstm")
    extra = dict(state, **{"module.extra_head.weight": torch.zeros(2)})
    with pytest.raises(ConversionError, match="extra_head"):
        convert(write_official_checkpoint(extra, tmp_path / "extra.pth.tar"), "lstm", None, 4)
    missing = {k: v for k, v in state.items() if k != "module.vit.transformer.blocks.1.norm2.weight"}
    with pytest.raises(ConversionError, match="layers.1.layernorm_after.weight"):
        convert(write_official_checkpoint(missing, tmp_path / "missing.pth.tar"), "lstm", None, 4)
    no_lstm = {k: v for k, v in state.items() if ".lstm." not in k}
    with pytest.raises(ConversionError, match="lstm"):
        convert(write_official_checkpoint(no_lstm, tmp_path / "nolstm.pth.tar"), "lstm", None, 4)


def test_cli_errors(tmp_path, capsys):
    state, *_ = golden("lstm")
    src = write_official_checkpoint(state, tmp_path / "ok.pth.tar")
    # hidden 32 is not a multiple of 64: the heads must be given
    assert main([str(src), str(tmp_path / "o1"), "--aggregation", "lstm"]) == 2
    assert "--num_attention_heads" in capsys.readouterr().err
    assert (
        main(
            [
                str(src),
                str(tmp_path / "o2"),
                "--aggregation",
                "lstm",
                "--num_attention_heads",
                "4",
                "--labels",
                "a,b",
            ]
        )
        == 2
    )
    assert "5 classes" in capsys.readouterr().err
    assert main([str(tmp_path / "nope.pth.tar"), str(tmp_path / "o3"), "--aggregation", "mean"]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "junk.pth.tar").write_bytes(b"not a pickle")
    assert main([str(tmp_path / "junk.pth.tar"), str(tmp_path / "o4"), "--aggregation", "mean"]) == 2
    assert "junk.pth.tar" in capsys.readouterr().err


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}, "payload": Evil()}, path)
    with pytest.raises(ConversionError, match="weights_only"):
        load_official_state_dict(path)


def test_damaged_safetensors_and_non_finite_weights_are_one_line(tmp_path, capsys):
    state, *_ = golden("lstm")
    whole = tmp_path / "whole.safetensors"
    save_file({k.removeprefix("module."): v.contiguous() for k, v in state.items()}, str(whole))
    (tmp_path / "cut.safetensors").write_bytes(whole.read_bytes()[:2000])
    (tmp_path / "random.safetensors").write_bytes(bytes(range(256)) * 16)
    poisoned = {k.removeprefix("module."): v.clone().contiguous() for k, v in state.items()}
    key = next(k for k in poisoned if k.endswith("fc.weight") or k.endswith("norm.weight"))
    poisoned[key][0] = float("inf")
    save_file(poisoned, str(tmp_path / "inf.safetensors"))
    for name, message in (("cut", "cannot be read as safetensors"), ("random", "cannot be read as safetensors"),
                          ("inf", f"1 tensor(s) hold NaN or Inf, a model converted from them predicts nothing: {key}")):
        args = [str(tmp_path / f"{name}.safetensors"), str(tmp_path / f"out_{name}"), "--aggregation", "lstm",
                "--num_attention_heads", "4"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {tmp_path / name}.safetensors") and message in err and err.count("\n") == 1, err
        assert not (tmp_path / f"out_{name}").exists()
