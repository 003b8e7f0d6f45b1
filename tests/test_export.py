"""`attnlab export RUN --onnx FILE`: ONNX Runtime computes what PyTorch computes, at batch sizes
and lengths other than the ones the graph was traced with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnlab
from attnlab.cli import main
from attnlab.tasks.lm import RECIPE_MODEL
from tests.look_runs import make_run, require, tiny_config

onnxruntime = require("onnxruntime")


@pytest.mark.parametrize("kind", ["lm", "lm-recipe", "classifier"])
def test_onnx_output_equals_pytorch_on_any_length(kind, tmp_path, capsys):
    """`lm-recipe`: the CPU presets' model (rotary positions, QK-norm, value residual), its
    blocks not starting at zero so that they count."""
    recipe = {**RECIPE_MODEL, "zero_init": False} if kind == "lm-recipe" else {}
    cfg = tiny_config(context=24, **recipe)
    model = (
        attnlab.Classifier(cfg, pooling="cls")
        if kind == "classifier"
        else attnlab.LanguageModel(cfg)
    )
    run = make_run(tmp_path / "run", model, ["no", "yes"] if kind == "classifier" else None)
    assert main(["export", run, "--onnx", str(tmp_path / "model.onnx")]) == 0
    assert "ONNX Runtime matches PyTorch" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    model = attnlab.load(run)
    for batch, length in ((1, 1), (3, 13), (2, 24)):
        tokens = torch.randint(0, 256, (batch, length))
        inputs = {"tokens": tokens.numpy()}
        if kind == "classifier":
            mask = torch.arange(length)[None] < torch.randint(1, length + 1, (batch, 1))
            inputs["mask"] = mask.numpy()
        (theirs,) = session.run(None, inputs)
        with torch.no_grad():
            ours = model(*(torch.from_numpy(x) for x in inputs.values()))
        assert np.abs(theirs - ours.numpy()).max() < 1e-4


def test_export_needs_a_file_name(tmp_path, capsys):
    run = make_run(tmp_path / "run", attnlab.LanguageModel(tiny_config()))
    assert main(["export", run]) == 2
    assert "--onnx" in capsys.readouterr().err
