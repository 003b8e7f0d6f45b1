"""Masked language modelling (BERT): hide some tokens, predict them from both sides.

Pretraining for a classifier (`attnlab train classify --init RUN`). Trains on random windows of
the text, framed `[CLS]` window `[SEP]`, with new masks every time (dynamic masking, Liu et al.
2019); judged by the loss and accuracy at a fixed set of masks of the held-out text. There is
no next-sentence prediction: RoBERTa (Liu et al. 2019, §4.2) found that dropping it matches or
improves downstream results, and a single stream of text has no sentence pairs to give.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..config import TrainConfig, option
from ..data.masking import Masking
from ..data.tokenizers import DEFAULT_VOCAB, MLM_SPECIALS, ByteTokenizer, Tokenizer
from ..data.tokenizers import train_tokenizer as learn_tokenizer
from ..data.windows import RandomWindows
from ..errors import UserError
from ..masked_scores import MaskedScores
from ..models import MaskedLM
from ..registry import TASKS
from ..runs import RunFolder
from .base import EvalConfig, Setup, Task
from .lm import SPLITS, EncodedText, encode_splits, read_splits

MLM_TOKENIZERS = ("wordpiece", "bytes")
# BERT's layout: post-norm blocks, GELU, LayerNorm epsilon 1e-12, the embeddings LayerNormed.
BERT_LAYOUT = dict(norm="post", activation="gelu", norm_eps=1e-12, embedding_norm=True)


@dataclass
class MaskedTextData:
    """Where the text comes from, how it becomes tokens, and how tokens are masked."""

    data: str = option("stdlib", "a text file, a folder of text files, 'stdlib' or 'enwik8'")
    glob: str = option("**/*", "which files of a --data folder to read")
    tokenizer: str = option(
        "wordpiece",
        "wordpiece (BERT's, trained on the training split), or bytes with [CLS] [SEP] [MASK] "
        "after the 256 byte ids",
        choices=MLM_TOKENIZERS,
    )
    vocab_size: int = option(
        0, f"wordpiece vocabulary (0: {DEFAULT_VOCAB['wordpiece']})", at_least=0
    )
    valid_fraction: float = option(
        0.05, "share of a single text held out for validation", at_least=0, below=0.5
    )
    test_fraction: float = option(
        0.05, "share of a single text held out for testing", at_least=0, below=0.5
    )
    mask_rate: float = option(
        0.15, "share of tokens chosen for prediction (BERT: 0.15)", above=0, below=1
    )
    whole_word: bool = option(False, "choose whole words, all their tokens together")
    eval_tokens: int = option(32768, "validation tokens scored at each check (0: all)", at_least=0)


@dataclass
class MaskedEval:
    """`attnlab eval` options of a masked language model."""

    pppl_tokens: int = option(
        2048, "tokens scored by pseudo-perplexity, one forward pass each (0: none)", at_least=0
    )


MLM_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Minutes on a 2-core CPU: a 4-block BERT on the standard library, WordPiece 4,096.
    "tiny": {
        "model": dict(context=128, depth=4, width=128, heads=4, **BERT_LAYOUT),
        "train": dict(minutes=5.0, batch_size=32, lr=1e-3, warmup=200, eval_every=200),
        "data": dict(vocab_size=4096),
    },
    # BERT-base (Devlin et al. 2019, §3 and appendix A.2): 12 × 768, 12 heads, context 512,
    # batch 256, Adam at 1e-4 with 10,000 warm-up steps, weight decay 0.01, dropout 0.1, a
    # 30,522-piece vocabulary, one million steps. For a GPU, on a corpus of billions of words
    # (--data): the standard library is far too small for it.
    "bert-base": {
        "model": dict(context=512, depth=12, width=768, heads=12, dropout=0.1, **BERT_LAYOUT),
        "train": dict(
            steps=1_000_000,
            batch_size=256,
            lr=1e-4,
            min_lr=0.0,
            warmup=10_000,
            weight_decay=0.01,
            beta2=0.999,
            eval_every=10_000,
            save_every=10_000,
        ),
        "data": dict(vocab_size=30_522),
    },
}


def make_tokenizer(data: MaskedTextData, train_text: bytes) -> Tokenizer:
    if data.tokenizer == "bytes":
        if data.vocab_size:
            raise UserError("--vocab-size applies to --tokenizer wordpiece; bytes have 259 ids")
        return ByteTokenizer(MLM_SPECIALS)
    return learn_tokenizer("wordpiece", [train_text.decode("utf-8", "replace")],
                           data.vocab_size or None)  # fmt: skip


@TASKS.register("mlm")
class MaskedLanguageModelTask(Task):
    """Masked language modelling (BERT): predict hidden tokens from both sides.

    Trains on random windows of the training split with new masks each time."""

    Data = MaskedTextData
    Eval = MaskedEval
    presets = MLM_PRESETS
    model_kinds = ("mlm",)
    plot = {"train": "loss", "valid": "valid_loss"}
    held_out = ("valid", "test")

    def __init__(
        self,
        text: EncodedText,
        tokenizer: Tokenizer,
        context: int,
        cfg: TrainConfig,
        data: MaskedTextData,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
    ):
        self.text, self.cfg, self.data, self.device = text, cfg, data, device
        self.masking = Masking(tokenizer, data.mask_rate, data.whole_word)
        train = text.tokens["train"]
        if len(train) < context - 1:
            raise UserError(
                f"{data.data}: the train split holds {len(train)} tokens, fewer than one window "
                f"of {context - 2}; give more text or a smaller --context"
            )
        self.windows = RandomWindows(train, context - 2, cfg.batch_size, cfg.seed, rank, world)
        # Masks are drawn afresh for every batch; each process draws its own.
        self.generator = torch.Generator().manual_seed(cfg.seed * 1009 + rank + 1)

    @classmethod
    def setup(cls, setup: Setup) -> tuple[MaskedLanguageModelTask, nn.Module]:
        data = setup.data
        splits = read_splits(data)
        tokenizer = (
            setup.folder.tokenizer() if setup.resuming else make_tokenizer(data, splits.train)
        )
        text = encode_splits(splits, tokenizer)
        for split in SPLITS[1:]:
            if not len(text.tokens[split]):
                raise UserError(f"{data.data}: the {split} split is empty; give more text")
        cfg = replace(setup.model, vocab_size=tokenizer.vocab_size)
        setup.say(f"data: {text.source}")
        sizes = ", ".join(f"{s} {len(text.tokens[s]):,} tokens" for s in SPLITS)
        setup.say(f"  {sizes}; {tokenizer.kind} tokenizer, vocab {tokenizer.vocab_size}")
        task = cls(text, tokenizer, cfg.context, setup.train, data, setup.device,
                   setup.dist.rank, setup.dist.world)  # fmt: skip
        if setup.dist.main and not setup.resuming:
            setup.folder.save_tokenizer(tokenizer)
        model = MaskedLM(cfg, cls_id=task.masking.cls_id)
        return task, model.to(setup.device)

    def next_batch(self, progress: float = 0.0) -> tuple[Tensor, Tensor]:
        windows, _ = next(self.windows)  # the next-token targets are not needed
        sequences, _ = self.masking.frame(windows)
        inputs, targets = self.masking(sequences, None, self.generator)
        return inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)

    def tokens_in(self, batch: tuple) -> int:
        return batch[0].numel()

    def loss(self, objective: nn.Module, batch: tuple) -> tuple[Tensor, dict[str, float]]:
        inputs, targets = batch
        return objective(inputs, None, targets)

    def train_metrics(self, loss: float) -> dict[str, float]:
        return {}

    def evaluate(self, model: nn.Module, split: str, quick: bool) -> dict[str, float]:
        tokens = self.text.tokens[split]
        if quick and self.data.eval_tokens:
            tokens = tokens[: self.data.eval_tokens]
        scores = MaskedScores(model, self.masking, self.cfg.batch_size, self.device)
        scores = scores.masked_tokens(np.asarray(tokens))
        return {f"{split}_loss": scores["loss"], f"{split}_accuracy": scores["accuracy"]}

    def state_dict(self) -> dict[str, Tensor]:
        return {**self.windows.state_dict(), "masks": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.windows.load_state_dict(state)
        self.generator.set_state(state["masks"])

    @classmethod
    def evaluate_folder(
        cls, folder: RunFolder, model: nn.Module, cfg: EvalConfig, options: MaskedEval
    ) -> dict[str, Any]:
        data = MaskedTextData(**folder.settings().get("data", {}))
        source = cfg.data or data.data
        tokenizer = folder.tokenizer()
        text = encode_splits(read_splits(data, source), tokenizer, names=(cfg.split,))
        tokens = np.asarray(text.tokens[cfg.split])
        if not len(tokens):
            raise UserError(f"{source}: the {cfg.split} split is empty")
        masking = Masking(tokenizer, data.mask_rate, data.whole_word)
        device = next(model.parameters()).device
        scores = MaskedScores(model, masking, cfg.batch_size, device)
        result = scores.masked_tokens(tokens)
        line = (
            f"{source} [{cfg.split}]: masked-token loss {result['loss']:.4f} nats, accuracy "
            f"{result['accuracy']:.4f} at {result['predicted']:,} masked positions"
        )
        if options.pppl_tokens:
            pppl = scores.pseudo_perplexity(tokens[: options.pppl_tokens])
            result.update(pppl)
            line += (f"; pseudo-perplexity {pppl['pseudo_perplexity']:.2f} over the first "
                     f"{pppl['pppl_tokens']:,} tokens")  # fmt: skip
        print(line)
        return {"data": source, "split": cfg.split, "tokens": len(tokens), **result}
