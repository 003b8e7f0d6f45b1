"""Text classification: one label per text; judged by accuracy and macro-F1."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..config import ModelConfig, TrainConfig, from_settings, option
from ..data.batching import ClassificationBatches
from ..data.imdb import load_imdb
from ..data.listops import LRA_MAX_LENGTH, load_listops, max_length_option, size_option
from ..data.tables import DEFAULT_VALID_FRACTION, ClassificationData, load_tables, read_table
from ..data.tokenizers import KINDS, Tokenizer, train_tokenizer
from ..errors import UserError
from ..metrics import classification_report, plot_confusion, render_confusion
from ..models import Classifier
from ..models.classifier import POOLINGS
from ..progress import progress
from ..registry import TASKS
from ..runs import RunFolder
from .base import EvalConfig, Setup, Task

BUILT_IN = ("listops", "imdb")


@dataclass
class LabeledData:
    """Where the texts and labels are, how texts become tokens, and how to pool them."""

    data: str = option("", "a CSV, TSV or JSONL file of texts and labels, listops or imdb")
    text_column: str = option("", "column of the texts (default: text, or an obvious guess)")
    label_column: str = option("", "column of the labels (default: label, or an obvious guess)")
    valid: str = option("", "a separate validation file (default: a stratified share of train)")
    test: str = option("", "a separate test file")
    valid_fraction: float = option(
        DEFAULT_VALID_FRACTION, "share of the training file held out for validation",
        above=0, below=1,
    )  # fmt: skip
    tokenizer: str = option(
        "auto", "how texts become tokens (auto: the --init run's, else bytes)",
        choices=("auto", *KINDS),
    )  # fmt: skip
    vocab_size: int = option(
        0, "tokenizer vocabulary (0: the kind's default; chars: every character seen)",
        at_least=0,
    )  # fmt: skip
    pooling: str = option("mean", "how token outputs become one vector", choices=POOLINGS)
    init: str = option(
        "", "start from a pretrained run (attnlab train mlm): its encoder and tokenizer; the "
        "head is new",
    )  # fmt: skip
    freeze_encoder: bool = option(False, "with --init: train the new head only")
    layer_decay: float = option(
        1.0, "with --init: each layer learns at this factor of the rate of the layer above it "
        "(layer-wise learning-rate decay; 1: none)", above=0, at_most=1,
    )  # fmt: skip
    class_weights: bool = option(False, "weight the loss by inverse class frequency")
    size: int = size_option()
    max_length: int = max_length_option()


CLASSIFY_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Five minutes on a 2-core CPU for a CSV of short texts (a line, a title, a message): BPE
    # pieces, mean-pooled, with the language models' fast recipe (Muon, linear decay to zero).
    "short-texts": {
        "model": dict(
            context=64,
            depth=2,
            width=128,
            heads=4,
            position="rope",
            activation="relu2",
            qk_norm=True,
            zero_init=True,
            bias=False,
            dropout=0.1,
        ),  # fmt: skip
        "train": dict(
            minutes=5.0,
            batch_size=64,
            lr=3e-3,
            min_lr=0.0,
            warmup=50,
            eval_every=200,
            optimizer="muon",
            schedule="linear",
        ),  # fmt: skip
        "data": dict(tokenizer="bpe", vocab_size=4096, pooling="mean"),
    },
    # Minutes on a 2-core CPU: 20,000 ListOps examples of at most 500 tokens.
    "listops-small": {
        # Words keep LRA's tokens but for "[" split from each operator: ~15% more tokens.
        "model": dict(context=600, depth=4, width=128, heads=4, position="sinusoidal"),
        "train": dict(steps=1500, batch_size=32, lr=1e-3, eval_every=250),
        "data": dict(data="listops", tokenizer="words", size=20_000, max_length=500),
    },
    # Long Range Arena's ListOps: lengths up to 2,000 (Tay et al. 2021), for a GPU.
    "listops-lra": {
        "model": dict(context=2000, depth=4, width=512, heads=8, ff_mult=2),
        "train": dict(
            steps=5000, batch_size=32, lr=5e-4, warmup=1000, eval_every=500, save_every=500
        ),
        "data": dict(data="listops"),
    },
    # The seed's IMDb classifier: 6 blocks, context 512, max pooling, about 85% test accuracy.
    "imdb-seed": {
        "model": dict(context=512, depth=6, width=128, heads=8),
        "train": dict(
            steps=20_000, batch_size=16, lr=1e-4, warmup=1000, eval_every=1000, save_every=1000
        ),
        "data": dict(data="imdb", tokenizer="words", vocab_size=50_000, pooling="max"),
    },
}


def load_classification_data(data: LabeledData, seed: int = 0) -> ClassificationData:
    """`--data listops`, `--data imdb`, or a CSV / TSV / JSONL file of texts and labels."""
    if not data.data:
        raise UserError("give --data: a CSV, TSV or JSONL file, listops or imdb")
    if data.data == "listops":
        return load_listops(data.size or None, data.max_length or LRA_MAX_LENGTH, seed=seed)
    if data.data == "imdb":
        return load_imdb(data.valid_fraction, seed)
    return load_tables(
        data.data, data.valid or None, data.test or None, data.text_column or None,
        data.label_column or None, data.valid_fraction, seed,
    )  # fmt: skip


def check_init_options(options: LabeledData, resuming: bool) -> None:
    """Refuse settings that contradict --init, or need it, before any data is read. A resumed
    run has its model already and no longer reads the pretrained run."""
    if not options.init:
        for name, default in (("freeze_encoder", False), ("layer_decay", 1.0)):
            if getattr(options, name) != default:
                raise UserError(f"--{name.replace('_', '-')} applies to a classifier started "
                                "from a pretrained run; give --init RUN")  # fmt: skip
        return
    if resuming:
        return
    folder = RunFolder(options.init)
    kind = folder.model_config()["kind"]
    if kind != "mlm":
        raise UserError(f"--init {folder}: holds a {kind} run; --init takes a masked language "
                        "model (a run of attnlab train mlm)")  # fmt: skip
    pretrained = folder.tokenizer().kind
    if options.tokenizer not in ("auto", pretrained):
        raise UserError(f"--tokenizer {options.tokenizer}: --init {folder} was pretrained on "
                        f"{pretrained} tokens, and a classifier started from it reads them too; "
                        "leave out --tokenizer")  # fmt: skip
    if options.vocab_size:
        raise UserError(f"--vocab-size: the vocabulary is that of --init {folder}; leave it out")


def pretrained_classifier(setup: Setup, num_classes: int) -> Classifier:
    """The classifier of `--init RUN`: the pretrained encoder, a new head. Model settings
    cannot change, except the dropout."""
    defaults = ModelConfig(vocab_size=setup.model.vocab_size)
    changed = [
        f.name
        for f in dataclasses.fields(ModelConfig)
        if f.name not in ("vocab_size", "dropout", "options")
        and getattr(setup.model, f.name) != getattr(defaults, f.name)
    ]
    if changed or setup.model.options != defaults.options:
        names = ", ".join(f"--{n.replace('_', '-')}" for n in changed) or "variant options"
        raise UserError(f"{names}: the model comes from --init {setup.data.init}; leave out "
                        "model settings (only --dropout may change)")  # fmt: skip
    dropout = setup.model.dropout if setup.model.dropout != defaults.dropout else None
    folder = RunFolder(setup.data.init)
    encoder = folder.load_model()
    trained = folder.checkpoint_metadata()["step"] if folder.has_checkpoint() else None
    setup.say(f"  encoder from {folder}" + (f", pretrained {trained} steps" if trained else ""))
    return Classifier.from_pretrained(encoder, num_classes, setup.data.pooling, dropout)


@TASKS.register("classify")
class ClassificationTask(Task):
    """One label per text, scored by accuracy and macro-F1.

    Trains on length-bucketed batches of the training texts."""

    Data = LabeledData
    presets = CLASSIFY_PRESETS
    model_kinds = ("classifier",)
    plot = {"train loss": "loss", "valid accuracy": "valid_accuracy"}

    def __init__(
        self,
        data: ClassificationData,
        tokenizer: Tokenizer,
        context: int,
        cfg: TrainConfig,
        options: LabeledData,
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
        if options.class_weights:
            counts = np.bincount(self.splits["train"].labels, minlength=len(self.classes))
            weights = len(counts) * counts.sum() / np.maximum(counts, 1) / len(counts) ** 2
            self.class_weights = torch.tensor(weights, dtype=torch.float32, device=device)

    @classmethod
    def setup(cls, setup: Setup) -> tuple[ClassificationTask, nn.Module]:
        options = setup.data
        check_init_options(options, setup.resuming)
        data = load_classification_data(options, setup.train.seed)
        if setup.resuming:
            tokenizer = setup.folder.tokenizer()
        elif options.init:
            tokenizer = RunFolder(options.init).tokenizer()
        else:
            kind = "bytes" if options.tokenizer == "auto" else options.tokenizer
            tokenizer = train_tokenizer(kind, data.train.texts, options.vocab_size or None)
        if options.init and not setup.resuming:
            pretrained = pretrained_classifier(setup, len(data.classes))
            cfg = pretrained.cfg
        else:
            pretrained, cfg = None, replace(setup.model, vocab_size=tokenizer.vocab_size)
        counts = ", ".join(
            f"{name} {len(part):,}"
            for name, part in (("train", data.train), ("valid", data.valid), ("test", data.test))
            if part
        )
        setup.say(f"data: {options.data}: {counts} texts, {len(data.classes)} classes")
        task = cls(data, tokenizer, cfg.context, setup.train, options, setup.device,
                   setup.dist.rank, setup.dist.world)  # fmt: skip
        setup.say(
            f"  {tokenizer.kind} tokenizer, vocab {tokenizer.vocab_size}. {task.truncation_note()}"
        )
        if setup.dist.main and not setup.resuming:
            setup.folder.save_tokenizer(tokenizer)
            setup.folder.save_labels(data.classes)
        model = pretrained or Classifier(cfg, len(data.classes), options.pooling)
        if options.freeze_encoder:
            model.freeze_encoder()
        if options.layer_decay != 1:
            model.lr_scales = model.layer_scales(options.layer_decay)
        return task, model.to(setup.device)

    def truncation_note(self) -> str:
        notes = [
            f"{name} {b.truncated:,} of {len(b):,}"
            for name, b in self.splits.items()
            if b.truncated
        ]
        return "texts cut to the context: " + ", ".join(notes) if notes else ""

    def next_batch(self, progress: float = 0.0):
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
        count = -(-len(batches) // batches.batch_size)
        for batch in progress(batches.eval_batches(), count, f"classifying {len(batches):,} texts"):
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

    @classmethod
    def evaluate_folder(
        cls, folder: RunFolder, model: nn.Module, cfg: EvalConfig, options: Any
    ) -> dict[str, Any]:
        settings, where = folder.settings_or_none(), str(folder.file(folder.SETTINGS))
        data = from_settings(LabeledData, settings.get("data", {}), where)
        train = from_settings(TrainConfig, settings.get("train", {"steps": 1}), where)
        if cfg.split == "all":
            raise UserError("--split all scores a language model's whole text; a classifier "
                            "is scored on --split valid or test")  # fmt: skip
        classes = folder.labels(model.num_classes)
        if cfg.data and cfg.data not in BUILT_IN:
            # A held-out file is scored whole, against the run's own classes.
            part = read_table(cfg.data, data.text_column or None, data.label_column or None)
            plot_name = f"confusion-{Path(cfg.data).stem}.png"
        else:
            loaded = load_classification_data(replace(data, data=cfg.data or data.data), train.seed)
            if cfg.split == "test" and loaded.test is None:
                raise UserError(f"{data.data}: no test split (give --test FILE when training, "
                                "or --data FILE here)")  # fmt: skip
            part, plot_name = loaded.split(cfg.split), f"confusion-{cfg.split}.png"
        scored = ClassificationData(part, part, None, classes)  # labels checked against classes
        source, device = part.source, next(model.parameters()).device
        train = replace(train, batch_size=cfg.batch_size)
        task = cls(scored, folder.tokenizer(), model.cfg.context, train, data, device)
        report = task.report(model, "valid")  # `scored` holds the split as its valid part
        confusion = np.array(report["confusion"])
        print(
            f"{source} [{cfg.split}]: accuracy {report['accuracy']:.4f}, macro-F1 "
            f"{report['macro_f1']:.4f} over {confusion.sum():,} texts"
        )
        for name, row in report["per_class"].items():
            print(
                f"  {name:>12}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                f"F1 {row['f1']:.3f}  support {row['support']}"
            )
        print(render_confusion(confusion, classes))
        try:
            path = plot_confusion(confusion, classes, folder.file(plot_name))
            print(f"confusion matrix: {path}")
        except OSError as error:
            print(f"confusion matrix not drawn: {folder} is not writable ({error.strerror})")
        return {"data": source, "split": cfg.split, **report}
