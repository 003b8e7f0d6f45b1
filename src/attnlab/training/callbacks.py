"""What the loop calls after each step: progress, metrics, evaluation, checkpoints and the
handling of interrupts. Each is a small `Callback`; `attnlab train` uses them all."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from .loop import Callback, Run, format_metrics
from .metrics_log import MetricsLog


class ProgressBar(Callback):
    """A bar over the budget (steps or minutes), with the step, loss and speed."""

    def start(self, run: Run) -> None:
        self.bar = tqdm(
            total=100,
            disable=not run.dist.main,
            bar_format="{percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
            dynamic_ncols=True,
            mininterval=1.0,
        )
        self.bar.update(min(100.0, 100 * run.fraction))

    def step(self, run: Run) -> None:
        if run.report:
            r = run.report
            text = f"step {run.step} loss {r['loss']:.3f} {r['tokens_per_s']:,.0f} tok/s"
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(min(100.0, 100 * run.fraction) - self.bar.n)

    def write(self, line: str) -> None:
        """Print a line above the bar."""
        self.bar.write(line)

    def end(self, run: Run) -> None:
        self.bar.close()  # before what is printed after training

    def close(self, run: Run) -> None:
        self.bar.close()


class Metrics(Callback):
    """The train report every few steps, into a `MetricsLog`."""

    def __init__(self, log: MetricsLog):
        self.log = log

    def step(self, run: Run) -> None:
        if run.report:
            self.log.write(run.step, **run.report)

    def close(self, run: Run) -> None:
        self.log.close()


class Evaluation(Callback):
    """A quick validation score every `every` steps: logged, plotted and printed."""

    def __init__(self, every: int, log: MetricsLog | None, say: Callable[[str], None] = print):
        self.every, self.log, self.say = every, log, say

    def step(self, run: Run) -> None:
        if run.step % self.every or not run.dist.main:
            return
        with run.autocast():
            result = run.task.evaluate(run.model, "valid", quick=True)
        if self.log:  # with the training seconds so far, for curves against wall-clock time
            self.log.write(run.step, seconds=round(run.seconds, 2), **result)
            self.log.plot()
        self.say(format_metrics(run.step, result))


class FinalScores(Callback):
    """Once the budget is spent: every held-out split scored in full, printed, logged and
    handed to `save(results)` (the run folder's `results.json`)."""

    def __init__(
        self,
        save: Callable[[dict[str, Any]], None],
        log: MetricsLog | None,
        say: Callable[[str], None] = print,
    ):
        self.save, self.log, self.say = save, log, say

    def end(self, run: Run) -> None:
        if run.stop is not None or not run.dist.main:
            return
        self.say(f"trained {run.step} steps in {run.seconds / 60:.1f} minutes")
        scores: dict[str, Any] = {}
        with run.autocast():
            for split in run.task.held_out:
                scores.update(run.task.evaluate(run.model, split, quick=False))
        self.say(format_metrics(run.step, scores))
        self.save({"step": run.step, "seconds": run.seconds, **scores})
        if self.log:
            self.log.write(run.step, **scores)
            self.log.plot()


class Checkpoints(Callback):
    """Restores a saved run at the start, or saves the untrained one (step 0), so a run that
    dies before its first `every` steps can still be resumed; then saves every `every` steps
    and at the end. `save(run, extra, meta)` writes, `restore(run)` reads."""

    def __init__(
        self,
        every: int,
        save: Callable[[Run, dict, dict], None],
        restore: Callable[[Run], tuple[dict, dict]] | None = None,
    ):
        self.every, self.save, self.restore = every, save, restore

    def start(self, run: Run) -> None:
        if self.restore is None:
            self.write(run)
            return
        extra, meta = self.restore(run)
        run.task.load_state_dict({k[len("task.") :]: v for k, v in extra.items()})
        run.step, run.seconds_before = meta["step"], meta["seconds"]

    def step(self, run: Run) -> None:
        if run.step % self.every == 0:
            self.write(run)

    def end(self, run: Run) -> None:
        self.write(run)

    def write(self, run: Run) -> None:
        if run.dist.main:
            extra = {f"task.{k}": v for k, v in run.task.state_dict().items()}
            self.save(run, extra, {"step": run.step, "seconds": run.seconds})


class StopOnSignal(Callback):
    """Ctrl-C (SIGINT) or SIGTERM (schedulers, `timeout`, container stops) asks the loop to
    stop after the current step, which the checkpoint callback then saves; a second signal
    stops at once. Only the main thread may install signal handlers; elsewhere the defaults
    stay."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def start(self, run: Run) -> None:
        self.run, self.previous = run, {}
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self.previous[number] = signal.signal(number, self.handle)

    def handle(self, number: int, frame: Any) -> None:
        if self.run.stop is not None:
            raise KeyboardInterrupt
        self.run.stop = signal.Signals(number).name

    def close(self, run: Run) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
