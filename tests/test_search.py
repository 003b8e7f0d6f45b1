"""`attnlab search`: a tiny search writes its study, a report and best settings that train;
processes share one study; pruned and failed trials are recorded as such; bad spaces are
refused with a clear message."""

import json
import os
import subprocess
import sys

import optuna
import pytest

from attnlab.cli import main
from attnlab.commands.search import Search, SearchOptions
from attnlab.runs import RunFolder
from attnlab.search.study import storage_for

SHARED = ["--set", "context=16", "batch-size=4", "eval-bytes=300", "sample-tokens=0",
          "warmup=2"]  # fmt: skip


@pytest.fixture
def corpus(text_file):
    return text_file


def write(path, text):
    path.write_text(text)
    return str(path)


def small_space(tmp_path, extra=""):
    return write(tmp_path / "space.yaml", "base: none\nmodel:\n  depth: {low: 1, high: 2}\n"
                 "  heads: [2, 4]\n  activation: [relu, relu2]\n  qkv_conv: [0, 3]\n"
                 "train:\n  lr: {low: 1.0e-3, high: 1.0e-2, log: true}\n" + extra)  # fmt: skip


def search(corpus, out, *extra):
    return main(["search", "--data", str(corpus), "--out", str(out), "--steps", "6",
                 *SHARED, *extra])  # fmt: skip


def load(out, name="attnlab"):
    return optuna.load_study(study_name=name, storage=storage_for(f"journal:{out}/{name}.journal"))


def test_a_tiny_search_writes_study_report_and_settings_that_train(corpus, tmp_path, capsys):
    out = tmp_path / "search"
    space = small_space(tmp_path)
    assert search(corpus, out, "--space", space, "--trials", "3", "--max-parameters", "30000") == 0
    study = load(out)
    assert len(study.trials) == 3
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(t.user_attrs["derived"]["stack_parameters"] <= 30000 for t in done)
    assert main(["search", "--report", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["best"][0]["number"] == min(done, key=lambda t: t.value).number
    assert any(p.endswith("history.png") for p in report["plots"])
    best = report["best_config"]
    run = tmp_path / "again"
    assert main(["train", "lm", "--config", best, "--data", str(corpus), "--steps", "2",
                 "--out", str(run)]) == 0  # fmt: skip
    assert (
        json.loads((run / "config.json").read_text())["model"]["depth"]
        == (report["best"][0]["params"]["depth"])
    )


def test_two_processes_share_one_study_with_distinct_trial_numbers(corpus, tmp_path):
    out = tmp_path / "shared"
    argv = [sys.executable, "-m", "attnlab", "search", "--data", str(corpus), "--out",
            str(out), "--steps", "30", "--trials", "6", "--space", small_space(tmp_path),
            *SHARED]  # fmt: skip
    processes = [subprocess.Popen([*argv, "--seed", str(seed)], env=os.environ.copy(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for seed in (1, 2)]  # fmt: skip
    assert all(p.wait(timeout=600) == 0 for p in processes)
    trials = load(out).trials
    numbers = [t.number for t in trials]
    assert len(numbers) >= 6 and len(set(numbers)) == len(numbers)
    folders = [t.user_attrs.get("run") for t in trials if "run" in t.user_attrs]
    assert len(set(folders)) == len(folders)


def test_a_pruned_trial_stops_early_and_is_marked_pruned(corpus, tmp_path):
    out = tmp_path / "pruned"
    args = SearchOptions(data=str(corpus), out=str(out), steps=8, checks=4,
                         space=small_space(tmp_path), set=tuple(SHARED[1:]))  # fmt: skip
    runner = Search(args)
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))
    study.optimize(runner.objective, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]  # the first check, a quarter in
    folder = RunFolder(out / "trial-0000")
    assert folder.settings()["train"]["steps"] == 8
    assert folder.checkpoint_metadata()["step"] == 2  # saved where it stopped


def test_a_failing_trial_is_recorded_with_its_message_and_the_study_goes_on(
    corpus, tmp_path, capsys
):
    out = tmp_path / "failing"
    space = write(tmp_path / "odd.yaml", "base: none\nmodel:\n  width: 30\n  heads: [3, 4]\n")
    assert search(corpus, out, "--space", space, "--trials", "4", "--sampler", "random",
                  "--seed", "0") == 0  # fmt: skip
    trials = load(out).trials
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 4 and failed and complete
    assert all("not divisible by --heads 4" in t.user_attrs["error"] for t in failed)
    assert "failed: --width 30 is not divisible" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text, message",
    [
        ("modle:\n  depth: 2\n", "unknown section(s) modle"),
        ("model:\n  dpeth: [2, 3]\n", "unknown setting 'dpeth'"),
        ("model:\n  attention: [dense, magic]\n", "'magic' is not one of"),
        ("model:\n  depth: {low: 4, high: 2}\n", "low < high"),
        ("model:\n  depth: []\n", "an empty list of choices"),
        ("model:\n  depth: {low: 1}\n", "a range is {low: L, high: H}"),
        ("train:\n  lr: {low: 0, high: 1, log: true}\n", "must be above 0"),
        ("model: [\n", "not valid YAML"),
        ("base: nothing\n", "base is default or none"),
    ],
)
def test_bad_space_files_are_refused_naming_the_file(corpus, tmp_path, capsys, text, message):
    space = write(tmp_path / "bad.yaml", text)
    assert search(corpus, tmp_path / "s", "--space", space, "--trials", "1") == 2
    error = capsys.readouterr().err
    assert space in error and message in error


def test_evolution_needs_one_objective_and_report_needs_a_study(corpus, tmp_path, capsys):
    two = ["--objective", "valid_bpb", "tokens_per_s", "--sampler", "evolution", "--trials", "1"]
    assert search(corpus, tmp_path / "e", *two) == 2
    assert "one objective" in capsys.readouterr().err
    assert main(["search", "--report", "--out", str(tmp_path / "none")]) == 2
    assert "no such journal file" in capsys.readouterr().err
