"""`attnlab export RUN --onnx FILE`: a language model's, classifier's or masked language
model's forward pass as ONNX, batch and sequence length left free (up to the context)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, option
from ..interop.onnx import export_onnx, onnx_difference
from ..io import atomic_write
from ..runs import RunFolder
from .base import Command, build, register


@dataclass
class ExportConfig:
    run: str = option("", "run folder", positional=True)
    onnx: str = option("", "the ONNX file to write")

    def __post_init__(self) -> None:
        if not self.onnx:
            raise ConfigError("--onnx: give the ONNX file to write")


def export(args: argparse.Namespace) -> int:
    cfg = build(ExportConfig, args)
    folder, path = RunFolder(cfg.run), Path(cfg.onnx)
    model = folder.load_model("cpu")
    names: list[str] = []
    atomic_write(path, lambda tmp: names.extend(export_onnx(model, tmp, str(folder))))
    print(f"{path}: inputs {', '.join(names)} (batch × length), output logits")
    try:
        difference = onnx_difference(model, path)
    except ImportError:
        return 0
    print(f"ONNX Runtime matches PyTorch to {difference:.1e} on a batch of 3 × 7 tokens")
    return 0


register(Command(("export",), "write a model as ONNX",
                 (("export", ExportConfig),), export))  # fmt: skip
