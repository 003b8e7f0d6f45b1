"""Text classification: one label per text; judged by accuracy and macro-F1."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..config import ClassifyConfig, TrainConfig
from ..data.batching import ClassificationBatches
from ..data.imdb import load_imdb
from ..data.listops import LRA_MAX_LENGTH, load_listops
from ..data.tables import ClassificationData, load_tables
from ..data.tokenizers import Tokenizer
from ..metrics import classification_report


def load_classification_data(cfg: TrainConfig, ccfg: ClassifyConfig) -> ClassificationData:
    """`--data listops`, `--data imdb`, or a CSV / TSV / JSONL file of texts and labels."""
    if cfg.data == "listops":
        return load_listops(ccfg.size or None, ccfg.max_length or LRA_MAX_LENGTH, seed=cfg.seed)
    if cfg.data == "imdb":
        return load_imdb(cfg.valid_fraction or 0.1, cfg.seed)
    return load_tables(
        cfg.data, ccfg.valid or None, ccfg.test or None, ccfg.text_column or None,
        ccfg.label_column or None, cfg.valid_fraction or 0.1, cfg.seed,
    )  # fmt: skip


class ClassificationTask:
    """Length-bucketed batches of the training texts; validation accuracy and macro-F1."""

    plot = {"train loss": "loss", "valid accuracy": "valid_accuracy"}

    def __init__(
        self,
        data: ClassificationData,
        tokenizer: Tokenizer,
        context: int,
        cfg: TrainConfig,
        ccfg: ClassifyConfig,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
    ):
        self.classes, self.device, self.rank, self.world = data.classes, device, rank, world
        self.splits = {
            name: ClassificationBatches.from_texts(
                tokenizer, part, data.classes, context, cfg.batch_size, cfg.seed
            )
            for name, part in (("train", data.train), ("valid", data.valid), ("test", data.test))
            if part is not None
        }
        self.held_out = tuple(name for name in ("valid", "test") if name in self.splits)
        self.drawn = 0
        self.batches = self.splits["train"].train_batches(rank, world)
        self.class_weights = None
        if ccfg.class_weights:
            counts = np.bincount(self.splits["train"].labels, minlength=len(self.classes))
            weights = len(counts) * counts.sum() / np.maximum(counts, 1) / len(counts) ** 2
            self.class_weights = torch.tensor(weights, dtype=torch.float32, device=device)

    def truncation_note(self) -> str:
        notes = [
            f"{name} {b.truncated:,} of {len(b):,}"
            for name, b in self.splits.items()
            if b.truncated
        ]
        return "texts cut to the context: " + ", ".join(notes) if notes else ""

    def next_batch(self):
        self.drawn += 1
        return next(self.batches).to(self.device)

    def tokens_in(self, batch) -> int:
        return int(batch.mask.sum())

    def loss(self, objective: nn.Module, batch) -> tuple[Tensor, dict[str, float]]:
        return objective(batch.tokens, batch.mask, batch.labels, self.class_weights)

    def train_metrics(self, loss: float) -> dict[str, float]:
        return {}

    @torch.no_grad()
    def predict(self, model: nn.Module, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(true labels, predicted labels) of every example of `split`, in data order."""
        was_training = model.training
        model.eval()
        batches = self.splits[split]
        predicted = np.zeros(len(batches), dtype=np.int64)
        for batch in batches.eval_batches():
            batch = batch.to(self.device)
            predicted[batch.index.cpu().numpy()] = model(batch.tokens, batch.mask).argmax(-1).cpu()
        model.train(was_training)
        return batches.labels, predicted

    def report(self, model: nn.Module, split: str) -> dict:
        return classification_report(*self.predict(model, split), self.classes)

    def evaluate(self, model: nn.Module, split: str, quick: bool) -> dict[str, float]:
        report = self.report(model, split)
        return {f"{split}_accuracy": report["accuracy"], f"{split}_macro_f1": report["macro_f1"]}

    def state_dict(self) -> dict[str, Tensor]:
        return {"drawn": torch.tensor(self.drawn)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        # The batch order is a pure function of the seed: replay it up to where it stopped.
        self.batches = self.splits["train"].train_batches(self.rank, self.world)
        self.drawn = int(state["drawn"])
        for _ in range(self.drawn):
            next(self.batches)
