"""Sequence to sequence: translate each source into its target (Vaswani et al. 2017); judged
by corpus BLEU and chrF against every reference, exact matches, and token loss and accuracy."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..config import ModelConfig, TrainConfig, option
from ..data.multi30k import load_multi30k
from ..data.pair_batches import PairBatch, PairBatches
from ..data.pairs import Pairs, generate_task, read_pairs
from ..data.tokenizers import Tokenizer, train_tokenizer
from ..errors import UserError
from ..models import Seq2Seq
from ..registry import TASKS
from ..runs import RunFolder
from ..translation import corpus_scores, encode_checked, special_ids, token_scores, translate_ids
from .base import EvalConfig, Setup, Task

HELD_OUT = 1000  # most valid (and test) examples of a generated task: a tenth of its size
SHOWN = 3  # translations printed at the end of training


@dataclass
class PairData:
    """Where the sentence pairs come from, how texts become tokens, how to batch and score."""

    data: str = option(
        "", "a TSV, CSV or JSONL file of sentence pairs, task:copy|reverse|sort|add, or "
        "multi30k (German to English; multi30k:en-de the other way)",
    )  # fmt: skip
    source_column: str = option("", "column of the sources (default: source, src, input, ...; "
                                "a file without a header: the first)")  # fmt: skip
    target_column: str = option("", "column of the targets (default: target, tgt, output, ...; "
                                "a file without a header: the second)")  # fmt: skip
    valid: str = option("", "a separate validation file (default: a share of the training file)")
    test: str = option("", "a separate test file")
    valid_fraction: float = option(
        0.05, "share of the training sources held out for validation", above=0, below=0.5
    )
    tokenizer: str = option(
        "bytes", "bytes, or byte-level BPE trained on both sides together (one vocabulary)",
        choices=("bytes", "bpe"),
    )  # fmt: skip
    vocab_size: int = option(0, "BPE vocabulary (0: the default, 4,096)", at_least=0)
    label_smoothing: float = option(0.1, "label smoothing ε of the loss", at_least=0, below=1)
    batch_tokens: int = option(
        0, "tokens per batch on each side, padding included (0: --batch-size pairs)", at_least=0
    )
    task_size: int = option(
        20_000, "training examples of a generated task (valid, test: a tenth, at most 1,000)",
        at_least=1,
    )  # fmt: skip
    min_length: int = option(1, "shortest string of a generated task (add: digits)", at_least=1)
    max_length: int = option(20, "longest string of a generated task (add: digits)", at_least=1)
    eval_sentences: int = option(
        200, "sources translated (greedily) for the validation scores at each check (0: all)",
        at_least=0,
    )  # fmt: skip
    beam: int = option(4, "beam size for the final scores (1: greedy)", at_least=1)
    length_penalty: float = option(0.6, "length penalty α of beam search (GNMT)", at_least=0)


@dataclass
class Seq2SeqEval:
    """`attnlab eval` options of a sequence-to-sequence model."""

    beam: int = option(None, "beam size (default: the run's)", kind=int, at_least=1)
    length_penalty: float = option(
        None, "length penalty α of beam search (default: the run's)", kind=float, at_least=0
    )


# The paper's Table 3 (base, big): 6 blocks on each side, Adam (β2 0.98) with the warm-up
# schedule, label smoothing 0.1, batches of about 25,000 tokens on each side.
PAPER_TRAINING = dict(schedule="noam", warmup=4000, beta2=0.98, weight_decay=0.0, grad_clip=0.0,
                      batch_size=64, eval_every=1000, save_every=1000)  # fmt: skip
PAPER_DATA = dict(tokenizer="bpe", vocab_size=37_000, batch_tokens=25_000, label_smoothing=0.1)


def paper_preset(width: int, heads: int, dropout: float, steps: int) -> dict[str, dict]:
    """A configuration of the paper's Table 3: post-norm, sinusoids, feed-forward 4·width."""
    model = dict(context=256, depth=6, width=width, heads=heads, ff_mult=4, dropout=dropout,
                 norm="post", position="sinusoidal")  # fmt: skip
    return {"model": model, "train": dict(steps=steps, **PAPER_TRAINING), "data": dict(PAPER_DATA)}


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Minutes on a 2-core CPU: reverses strings of 1 to 20 letters.
    "tiny": {
        "model": dict(context=32, depth=2, width=128, heads=4, position="sinusoidal"),
        "train": dict(steps=3000, batch_size=64, lr=1e-3, warmup=100, eval_every=500),
        "data": dict(data="task:reverse"),
    },
    "base": paper_preset(width=512, heads=8, dropout=0.1, steps=100_000),
    "big": paper_preset(width=1024, heads=16, dropout=0.3, steps=300_000),
}


def load_pairs(data: PairData, seed: int = 0) -> dict[str, Pairs]:
    """The splits of `--data`: a generated task, Multi30k, or the user's files (without
    --valid, a share of the training sources is held out)."""
    if not data.data:
        raise UserError("give --data: a TSV, CSV or JSONL file of pairs, task:reverse (or copy, "
                        "sort, add) or multi30k")  # fmt: skip
    if data.data.startswith("task:"):
        held = min(HELD_OUT, max(1, data.task_size // 10))
        sizes = (data.task_size, held, held)
        return generate_task(data.data[5:], sizes, data.min_length, data.max_length, seed)
    if data.data == "multi30k" or data.data.startswith("multi30k:"):
        return load_multi30k(data.data.partition(":")[2] or "de-en")
    columns = (data.source_column, data.target_column)
    train = read_pairs(data.data, *columns)
    if data.valid:
        splits = {"train": train, "valid": read_pairs(data.valid, *columns)}
    else:
        if len(train) < 2:
            raise UserError(f"{data.data}: one source only; give more pairs or a --valid file")
        held = max(1, round(data.valid_fraction * len(train)))
        order = np.random.default_rng(seed).permutation(len(train))
        splits = {"train": train.subset(sorted(order[held:].tolist())),
                  "valid": train.subset(sorted(order[:held].tolist()))}  # fmt: skip
    if data.test:
        splits["test"] = read_pairs(data.test, *columns)
    return splits


class Scorer:
    """One split encoded for a model: its sources, references and teacher-forced batches."""

    def __init__(self, pairs: Pairs, tokenizer: Tokenizer, context: int, batch_size: int,
                 batch_tokens: int = 0, seed: int = 0):  # fmt: skip
        self.pairs, self.tokenizer, self.context = pairs, tokenizer, context
        where = [pairs.where(i) for i in range(len(pairs))]
        self.sources = encode_checked(tokenizer, pairs.sources, context, "source", where)
        example, targets = zip(*pairs.pairs(), strict=True)
        target_ids = encode_checked(tokenizer, list(targets), context, "target",
                                    [where[i] for i in example])  # fmt: skip
        bos, eos = special_ids(tokenizer)
        self.batches = PairBatches(self.sources, target_ids, list(example), bos, eos,
                                   batch_size, batch_tokens, seed)  # fmt: skip
        self.batch_size = batch_size

    def sample(self, n: int) -> Scorer:
        """The first n sources with their references (all of them for n = 0)."""
        if not n or n >= len(self.pairs):
            return self
        return Scorer(self.pairs.subset(list(range(n))), self.tokenizer, self.context,
                      self.batch_size)  # fmt: skip

    def translate(self, model: nn.Module, beam: int, alpha: float) -> tuple[list[str], list]:
        ids, scores = translate_ids(model, self.sources, beam=beam, length_penalty=alpha,
                                    batch_size=self.batch_size,
                                    device=next(model.parameters()).device)  # fmt: skip
        return [self.tokenizer.decode(x) for x in ids], scores

    def score(self, model: nn.Module, beam: int, alpha: float) -> dict[str, Any]:
        """BLEU, chrF, exact match, loss and accuracy of the model on these pairs."""
        hypotheses, _ = self.translate(model, beam, alpha)
        device = next(model.parameters()).device
        return {**corpus_scores(hypotheses, self.pairs.references),
                **token_scores(model, self.batches, device)}  # fmt: skip


@TASKS.register("seq2seq")
class Seq2SeqTask(Task):
    """Sequence to sequence: translate sources into targets (BLEU, chrF, exact match).

    Trains on length-bucketed batches of the training pairs, with label smoothing."""

    Data = PairData
    Eval = Seq2SeqEval
    presets = PRESETS
    model_kinds = ("seq2seq",)
    plot = {"train cross-entropy": "ce", "valid cross-entropy": "valid_loss",
            "valid token accuracy": "valid_accuracy"}  # fmt: skip

    def __init__(self, splits: dict[str, Pairs], tokenizer: Tokenizer, model: ModelConfig,
                 cfg: TrainConfig, data: PairData, device: torch.device, rank: int = 0,
                 world: int = 1):  # fmt: skip
        self.data, self.device, self.rank, self.world = data, device, rank, world
        self.scorers = {
            name: Scorer(pairs, tokenizer, model.context, cfg.batch_size, data.batch_tokens,
                         cfg.seed)
            for name, pairs in splits.items()
        }  # fmt: skip
        self.samples = {name: s.sample(data.eval_sentences) for name, s in self.scorers.items()}
        self.held_out = tuple(name for name in ("valid", "test") if name in splits)
        self.drawn = 0
        self.order = self.scorers["train"].batches.train_indices(rank, world)

    @classmethod
    def setup(cls, setup: Setup) -> tuple[Seq2SeqTask, nn.Module]:
        data = setup.data
        splits = load_pairs(data, setup.train.seed)
        if setup.resuming:
            tokenizer = setup.folder.tokenizer()
        else:
            train = splits["train"]
            texts = train.sources + [t for refs in train.references for t in refs]
            tokenizer = train_tokenizer(data.tokenizer, texts if data.tokenizer != "bytes" else [],
                                        data.vocab_size or None)  # fmt: skip
        cfg = replace(setup.model, vocab_size=tokenizer.vocab_size + 2)  # and BOS, EOS
        counts = ", ".join(f"{name} {len(p):,} sources ({len(p.pairs()):,} pairs)"
                           for name, p in splits.items())  # fmt: skip
        setup.say(f"data: {data.data}: {counts}")
        setup.say(f"  {tokenizer.kind} tokenizer shared by both sides, vocab "
                  f"{tokenizer.vocab_size} + BOS and EOS")  # fmt: skip
        task = cls(splits, tokenizer, cfg, setup.train, data, setup.device,
                   setup.dist.rank, setup.dist.world)  # fmt: skip
        if setup.dist.main and not setup.resuming:
            setup.folder.save_tokenizer(tokenizer)
        model = Seq2Seq(cfg, *special_ids(tokenizer))
        return task, model.to(setup.device)

    def finish(self, setup: Setup, model: nn.Module) -> None:
        split = self.held_out[-1] if self.held_out else "train"
        shown = self.scorers[split].sample(SHOWN)
        hypotheses, _ = shown.translate(model, self.data.beam, self.data.length_penalty)
        setup.say(f"--- the first translations of the {split} split ---")
        for source, hypothesis, refs in zip(shown.pairs.sources, hypotheses,
                                            shown.pairs.references, strict=True):  # fmt: skip
            setup.say(f"{source!r} -> {hypothesis!r} (reference {refs[0]!r})")

    def next_batch(self, progress: float = 0.0) -> PairBatch:
        self.drawn += 1
        return self.scorers["train"].batches.collate(next(self.order)).to(self.device)

    def tokens_in(self, batch: PairBatch) -> int:
        return int(batch.src_mask.sum()) + int((batch.tgt_out >= 0).sum())

    def loss(self, objective: nn.Module, batch: PairBatch) -> tuple[Tensor, dict[str, float]]:
        return objective(batch.src, batch.src_mask, batch.tgt_in, batch.tgt_out,
                         label_smoothing=self.data.label_smoothing)  # fmt: skip

    def train_metrics(self, loss: float) -> dict[str, float]:
        return {}

    def evaluate(self, model: nn.Module, split: str, quick: bool) -> dict[str, float]:
        """Quick (during training): greedy on the first `eval_sentences` sources; else beam
        search on every source."""
        if quick:
            scores = self.samples[split].score(model, 1, 0.0)
        else:
            scores = self.scorers[split].score(model, self.data.beam, self.data.length_penalty)
        return {f"{split}_{k}": v for k, v in scores.items()}

    def state_dict(self) -> dict[str, Tensor]:
        return {"drawn": torch.tensor(self.drawn)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        # The batch order is a pure function of the seed: replay it up to where it stopped.
        self.drawn = int(state["drawn"])
        order = self.scorers["train"].batches.train_indices(self.rank, self.world)
        deque(islice(order, self.drawn), maxlen=0)  # skip what was drawn before
        self.order = order

    @classmethod
    def evaluate_folder(
        cls, folder: RunFolder, model: nn.Module, cfg: EvalConfig, options: Seq2SeqEval
    ) -> dict[str, Any]:
        settings = folder.settings()
        data = PairData(**settings.get("data", {}))
        seed = TrainConfig(**settings.get("train", {})).seed
        if cfg.split == "all":
            raise UserError("--split all applies to language models; a sequence-to-sequence "
                            "model is scored on --split valid or test")  # fmt: skip
        built_in = cfg.data.startswith(("task:", "multi30k"))
        if cfg.data and not built_in:
            pairs = read_pairs(cfg.data, data.source_column, data.target_column)
        else:
            splits = load_pairs(replace(data, data=cfg.data or data.data), seed)
            if cfg.split not in splits:
                raise UserError(f"{cfg.data or data.data}: no {cfg.split} split (give --test "
                                "FILE when training, or --data FILE here)")  # fmt: skip
            pairs = splits[cfg.split]
        beam = options.beam or data.beam
        alpha = data.length_penalty if options.length_penalty is None else options.length_penalty
        scorer = Scorer(pairs, folder.tokenizer(), model.cfg.context, cfg.batch_size)
        scores = scorer.score(model, beam, alpha)
        print(f"{pairs.source} [{cfg.split}]: BLEU {scores['bleu']:.2f}, chrF "
              f"{scores['chrf']:.2f}, exact match {scores['exact_match']:.4f}, loss "
              f"{scores['loss']:.4f}, token accuracy {scores['accuracy']:.4f} over "
              f"{len(pairs):,} sources (beam {beam})")  # fmt: skip
        return {"data": pairs.source, "split": cfg.split, "sources": len(pairs), "beam": beam,
                **scores}  # fmt: skip
