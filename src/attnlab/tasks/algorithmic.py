"""The algorithmic tasks of the Neural Turing Machine paper (Graves et al. 2014, §4): copy,
repeat copy, associative recall and priority sort, for NTMs, DNCs, LSTMs and transformers.

Batches are drawn on the fly from one seeded generator, whose state the checkpoint keeps, so a
resumed run sees exactly the batches it would have seen. Each batch has one length, drawn from
the training range. Validation scores the longest training length, the convergence criterion
of the papers (bit error per sequence below 1); at the end, the run is scored at longer lengths
too, and its folder gets `bit-error.png` and, for a model with an external memory,
`memory.png`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from ..config import TrainConfig, check_fields, option
from ..data.algorithmic import TASK_NAMES, Layout, generate
from ..errors import UserError
from ..models.sequence import SequenceModel, sequence_model
from ..registry import TASKS
from ..runs import RunFolder
from .algorithmic_report import plot_bit_error, plot_memory, score
from .base import EvalConfig, Setup, Task

# The papers' training ranges: copy 1-20 (NTM §4.1), repeat copy 1-10 vectors repeated 1-10
# times (§4.2), associative recall 2-6 items (§4.3), priority sort 20 vectors (§4.5).
TRAINING_LENGTHS = {"copy": (1, 20), "repeat-copy": (1, 10), "associative-recall": (2, 6),
                    "priority-sort": (20, 20)}  # fmt: skip
TRAINING_REPEATS = (1, 10)
DEFAULT_BITS = {"associative-recall": 6}  # else 8
SEEDS = {"valid": 1_000_003, "test": 2_000_003}  # scoring sets, apart from the training stream

# Per model kind, what a run starts from when no --preset is given. The NTM's and DNC's
# controller is the NTM paper's (LSTM, 100 units); the LSTM and the transformer are sized to
# about the NTM's 112,000 parameters. Adam at 1e-3, batch 32: Collier & Beel 2018.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "ntm": {"width": 100, "heads": 1},
    "dnc": {"width": 100, "heads": 1},
    "lstm": {"width": 68, "heads": 1},
    "transformer": {"width": 68, "depth": 2, "heads": 2, "position": "rope"},
}
TRAIN_DEFAULTS = {"batch_size": 32, "lr": 1e-3, "min_lr": 1e-4, "weight_decay": 0.0,
                  "warmup": 100, "eval_every": 200, "save_every": 500}  # fmt: skip


@dataclass
class AlgorithmicData:
    """Which task, and the lengths it is trained on."""

    task: str = option("copy", "the task of the NTM paper to learn", choices=TASK_NAMES)
    bits: int = option(0, "random bits per vector (0: 8; 6 for associative-recall)", at_least=0)
    min_length: int = option(
        0, "shortest training length: vectors, or items for associative-recall (0: the "
        "paper's)", at_least=0,
    )  # fmt: skip
    max_length: int = option(0, "longest training length (0: the paper's)", at_least=0)
    min_repeats: int = option(0, "repeat-copy: fewest repeats (0: 1)", at_least=0)
    max_repeats: int = option(0, "repeat-copy: most repeats (0: 10)", at_least=0)
    eval_sequences: int = option(256, "sequences scored at each validation check", at_least=1)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class AlgorithmicEval:
    """`attnlab eval` options of an algorithmic run."""

    task: str = option(None, "task to score (default: the run's)", kind=str, choices=TASK_NAMES)
    length: int = option(
        None, "lengths to score at (default: the longest trained)", kind=int, many=True,
        at_least=1,
    )  # fmt: skip
    repeats: int = option(None, "repeat-copy: repeats (default: the most trained)", kind=int,
                          at_least=1)  # fmt: skip
    sequences: int = option(512, "sequences scored per length", at_least=1)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class Spec:
    """A run's task with every default filled in."""

    layout: Layout
    lengths: tuple[int, int]
    repeats: tuple[int, int]

    @classmethod
    def of(cls, data: AlgorithmicData) -> Spec:
        task = data.task
        layout = Layout(task, data.bits or DEFAULT_BITS.get(task, 8))
        low, high = TRAINING_LENGTHS[task]
        lengths = (data.min_length or low, data.max_length or max(high, data.min_length))
        repeats = (data.min_repeats or TRAINING_REPEATS[0],
                   data.max_repeats or max(TRAINING_REPEATS[1], data.min_repeats))  # fmt: skip
        if lengths[0] > lengths[1]:
            raise UserError(f"--min-length {lengths[0]} is above --max-length {lengths[1]}")
        if lengths[0] < layout.least_length:
            raise UserError(f"--min-length {lengths[0]}: {task} needs at least "
                            f"{layout.least_length}")  # fmt: skip
        if repeats[0] > repeats[1]:
            raise UserError(f"--min-repeats {repeats[0]} is above --max-repeats {repeats[1]}")
        return cls(layout, lengths, repeats)


def check_fits(model: SequenceModel, layout: Layout, length: int, repeats: int, flag: str):
    """Refuse a length the model cannot hold: more vectors than memory slots, or more
    positions than a transformer's context."""
    slots, stored = model.memory_slots(), layout.stored(length)
    if slots is not None and stored > slots:
        raise UserError(
            f"{flag} {length}: {layout.task} then stores {stored} vectors, more than the "
            f"{slots} slots of the {model.title}'s memory; give a shorter length or more "
            f"--{model.cfg.model}.slots"
        )
    limit, steps = model.max_length(), layout.steps(length, repeats)
    if limit is not None and steps > limit:
        raise UserError(
            f"{flag} {length}: {layout.task} then takes {steps} positions, more than the "
            f"model's context of {limit}; give a larger --context"
        )


def check_shape(model: SequenceModel, layout: Layout, where: str) -> None:
    if (model.inputs, model.outputs) != (layout.inputs, layout.outputs):
        raise UserError(
            f"{where}: the model reads {model.inputs} and writes {model.outputs} channels; "
            f"{layout.task} with {layout.bits} bits has {layout.inputs} and {layout.outputs}"
        )


@TASKS.register("algorithmic")
class AlgorithmicTask(Task):
    """The NTM paper's tasks on random bit vectors, scored in bits wrong per sequence.

    Copy, repeat copy, associative recall and priority sort, generated on the fly."""

    Data = AlgorithmicData
    Eval = AlgorithmicEval
    model_kinds = ("sequence", "ntm", "dnc")
    # The train bit error (in the metrics) is of one batch at its drawn length: too noisy to
    # plot; validation scores the longest training length.
    plot = {
        "valid bit error": "valid_bit_error",
        "valid sequence accuracy": "valid_sequence_accuracy",
    }
    held_out = ("valid", "test")

    def __init__(self, spec: Spec, cfg: TrainConfig, data: AlgorithmicData, device: torch.device):
        self.spec, self.cfg, self.data, self.device = spec, cfg, data, device
        self.generator = torch.Generator().manual_seed(cfg.seed)

    @classmethod
    def defaults(cls, flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """An NTM unless --model says otherwise; each model kind at its own size."""
        kind = flags.get("model", "ntm")
        model = {"model": kind, **MODEL_DEFAULTS.get(kind, {})}
        return {"model": model, "train": TRAIN_DEFAULTS}

    @classmethod
    def setup(cls, setup: Setup) -> tuple[AlgorithmicTask, nn.Module]:
        spec = Spec.of(setup.data)
        layout = spec.layout
        model = sequence_model(setup.model, layout.inputs, layout.outputs)
        if setup.train.compile and model.recurrent:
            model.stack.compile_step()  # the loop over positions stays in Python
        check_fits(model, layout, spec.lengths[1], spec.repeats[1], "--max-length")
        low, high = spec.lengths
        repeats = f", repeated {spec.repeats[0]}-{spec.repeats[1]} times" * (
            layout.task == "repeat-copy"
        )
        setup.say(f"data: {layout.task}, {layout.bits}-bit vectors, lengths {low}-{high}"
                  f"{repeats}, drawn per batch")  # fmt: skip
        task = cls(spec, setup.train, setup.data, setup.device)
        return task, model.to(setup.device)

    def next_batch(self, progress: float = 0.0) -> tuple:
        low, high = self.spec.lengths
        length = int(torch.randint(low, high + 1, (), generator=self.generator))
        repeats = int(torch.randint(self.spec.repeats[0], self.spec.repeats[1] + 1, (),
                                    generator=self.generator))  # fmt: skip
        batch = generate(self.spec.layout, self.cfg.batch_size, length, self.generator, repeats)
        batch = batch.to(self.device)
        return batch.inputs, batch.targets, batch.scored

    def tokens_in(self, batch: tuple) -> int:
        return batch[0].shape[0] * batch[0].shape[1]

    def loss(self, objective: nn.Module, batch: tuple) -> tuple[Tensor, dict[str, float]]:
        return objective(*batch)

    def train_metrics(self, loss: float) -> dict[str, float]:
        return {}

    def score(self, model: nn.Module, split: str, length: int, sequences: int) -> dict:
        return score(model, self.spec.layout, length, sequences, SEEDS[split] + length,
                     self.cfg.batch_size, self.spec.repeats[1])  # fmt: skip

    def evaluate(self, model: nn.Module, split: str, quick: bool) -> dict[str, float]:
        """Scored at the longest training length; the final scores on 4× the sequences."""
        sequences = self.data.eval_sequences * (1 if quick else 4)
        result = self.score(model, split, self.spec.lengths[1], sequences)
        return {f"{split}_bit_error": result["bit_error_per_sequence"],
                f"{split}_sequence_accuracy": result["sequence_accuracy"]}  # fmt: skip

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])

    def finish(self, setup: Setup, model: nn.Module) -> None:
        """Score the trained model at lengths up to three times the longest trained, print
        them and draw the run's pictures."""
        low, high = self.spec.lengths
        lengths = sorted({low, (low + high) // 2, high, high * 3 // 2, 2 * high, 3 * high})
        rows = []
        for length in lengths:
            try:
                check_fits(model, self.spec.layout, length, self.spec.repeats[1], "length")
            except UserError:
                continue  # longer than the model can hold: not scored
            rows.append(self.score(model, "test", length, self.data.eval_sequences))
        setup.say("bit error per sequence by length (test sequences; trained "
                  f"{low}-{high}):")  # fmt: skip
        for row in rows:
            setup.say(f"  length {row['length']:>4}: {row['bit_error_per_sequence']:8.3f} bits, "
                      f"{row['sequence_accuracy']:6.1%} of sequences perfect")  # fmt: skip
        draw(setup.folder, model, self.spec, rows, high, setup.say)

    @classmethod
    def evaluate_folder(
        cls, folder: RunFolder, model: nn.Module, cfg: EvalConfig, options: AlgorithmicEval
    ) -> dict[str, Any]:
        if cfg.data:
            raise UserError(f"--data: the data of {folder} is generated; choose it with --task "
                            "and --length")  # fmt: skip
        settings = folder.settings()
        data = AlgorithmicData(**settings.get("data", {}))
        spec = Spec.of(replace(data, task=options.task or data.task))
        check_shape(model, spec.layout, f"--task {spec.layout.task}")
        repeats = options.repeats or spec.repeats[1]
        lengths = options.length or (spec.lengths[1],)
        for length in lengths:
            check_fits(model, spec.layout, length, repeats, "--length")
        train = replace(TrainConfig(**settings.get("train", {})), batch_size=cfg.batch_size)
        task = cls(spec, train, data, next(model.parameters()).device)
        split = "valid" if cfg.split == "valid" else "test"
        rows = [task.score(model, split, length, options.sequences) for length in lengths]
        for row in rows:
            print(
                f"{spec.layout.task}, length {row['length']}: {row['bit_error_per_sequence']:.3f} "
                f"bits wrong per sequence, {row['sequence_accuracy']:.1%} of {row['sequences']} "
                "sequences perfect"
            )
        draw(folder, model, spec, rows, lengths[0], print)
        result: dict[str, Any] = {"task": spec.layout.task, "split": split, "by_length": rows}
        if len(rows) == 1:
            result.update(rows[0])
        return result


def draw(folder: RunFolder, model: nn.Module, spec: Spec, rows: list, length: int, say) -> None:
    """The run's bit-error curve and, for a model with a memory, one example's weightings."""
    layout = spec.layout
    xlabel = "items" if layout.task == "associative-recall" else "length"
    try:
        where = folder.file(RunFolder.BIT_ERROR_PLOT)
        path = plot_bit_error({model.cfg.model: rows}, spec.lengths, where, layout.task, xlabel)
        say(f"bit error by length: {path}")
        example = generate(layout, 1, length, torch.Generator().manual_seed(0), spec.repeats[1])
        device = next(model.parameters()).device
        title = f"{layout.task}, {xlabel} {length}"
        path = plot_memory(model, example.to(device), folder.file(RunFolder.MEMORY_PLOT), title)
        if path is not None:
            say(f"memory weightings: {path}")
    except OSError as error:
        say(f"pictures not drawn: {folder} is not writable ({error.strerror})")
