"""ONNX export of a model's forward pass, with the batch and the sequence as dynamic axes.

The graph is traced by `torch.export` (the dynamo exporter). A core with a written-out path
(`--dense.path reference`) is exported on it: the fused kernel's shape-dependent branches are
Python, not graph operations, and ONNX Runtime fuses the written-out attention itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import build
from ..errors import UserError

INPUT_NAMES = ("tokens", "mask")


def written_out(model: nn.Module) -> nn.Module:
    """The same model (same weights) with every variant that has a written-out `path` on it."""
    cfg = model.cfg
    options = {name: {**values, "path": "reference"} if values.get("path") == "fused" else values
               for name, values in cfg.options.items()}  # fmt: skip
    config = {"kind": model.kind, **model.config_dict()}
    config["model"] = dataclasses.asdict(dataclasses.replace(cfg, options=options))
    twin = build(config)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def export_onnx(model: nn.Module, path: str | os.PathLike, where: str) -> list[str]:
    """Write `model`'s forward pass as ONNX to `path`; returns the input names."""
    model = written_out(model)
    inputs = model.example_inputs(2, min(8, model.cfg.context))
    names = list(INPUT_NAMES[: len(inputs)])
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    length = torch.export.Dim("length", min=1, max=model.cfg.context)
    shapes = tuple({0: batch, 1: length} for _ in inputs)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), torch.no_grad():
            torch.onnx.export(
                model, inputs, str(path), input_names=names, output_names=["logits"],
                dynamic_shapes=shapes, dynamo=True,
            )  # fmt: skip
    except Exception as error:  # the exporter's errors come from deep inside torch.export
        reason = str(error).strip().splitlines()
        summary = next((line for line in reversed(reason) if line.startswith("<class")), "")
        raise UserError(
            f"{where}: this {model.title} ({model.cfg.model} stack, {model.cfg.attention} "
            f"attention) could not be exported to ONNX: {summary or reason[0]}"
        ) from error
    return names


def onnx_difference(model: nn.Module, path: Path, batch: int = 3, length: int = 7) -> float:
    """Largest |ONNX Runtime − PyTorch| on random inputs of another shape than the traced one."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = model.example_inputs(batch, min(length, model.cfg.context))
    feed = dict(zip(INPUT_NAMES, (x.numpy() for x in inputs), strict=False))
    (ours,) = session.run(None, feed)
    with torch.no_grad():
        theirs = model.eval()(*inputs)
    return (torch.from_numpy(ours) - theirs).abs().max().item()
