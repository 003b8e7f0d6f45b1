"""`attnlab compare`: two variants × two seeds become four real run folders and one table
whose numbers are those `attnlab eval` reports; a comparison interrupted and run again
continues with the runs not yet finished."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from attnlab.cli import main
from attnlab.commands.compare import CompareOptions, plan

RUN = ["--set", "context=16", "depth=1", "width=32", "heads=2", "batch-size=4", "eval-every=2",
       "save-every=2", "sample-tokens=0", "eval-bytes=300"]  # fmt: skip


def as_at_a_terminal():
    """Ctrl-C as at a terminal, also where the tests run in the background (which starts
    processes with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """A comparison stopped by Ctrl-C once its first run has finished, then run again."""
    root = tmp_path_factory.mktemp("compare")
    corpus = root / "corpus.txt"
    corpus.write_text("for i in range(10):\n    print(i * i)\n" * 60)
    out = root / "cmp"
    argv = ["compare", "--data", str(corpus), "--vary", "attention=dense,linear", "--seeds", "2",
            "--steps", "40", "--out", str(out), *RUN]  # fmt: skip
    env = {**os.environ, "ATTNLAB_CACHE": str(root / "cache")}
    first = out / "attention-dense" / "seed-0" / "results.json"
    command = [sys.executable, "-m", "attnlab", *argv]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               preexec_fn=as_at_a_terminal)  # fmt: skip
    while not first.exists() and process.poll() is None:
        time.sleep(0.2)
    kept = first.read_bytes()
    process.send_signal(signal.SIGINT)
    printed, _ = process.communicate(timeout=300)
    finished_then = sorted(p.parent.name + "/" + p.parent.parent.name
                           for p in out.glob("*/*/results.json"))  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:  # the cache of this module's runs only
        patch.setenv("ATTNLAB_CACHE", str(root / "cache"))
        rerun = main([*argv, "--json"])
    return {"out": out, "status": process.returncode, "printed": printed, "kept": kept,
            "first": first, "finished_then": finished_then, "rerun": rerun}  # fmt: skip


def test_an_interrupted_comparison_continues_where_it_stopped(comparison):
    assert comparison["status"] == 130, comparison["printed"]
    assert "the same command continues" in comparison["printed"]
    assert len(comparison["finished_then"]) < 4
    assert comparison["rerun"] == 0
    assert comparison["first"].read_bytes() == comparison["kept"]  # not trained again


def test_every_variant_and_seed_is_a_real_run_whose_scores_the_table_shows(comparison, capsys):
    out = comparison["out"]
    folders = sorted(p.parent for p in out.glob("*/seed-*/results.json"))
    assert [f"{f.parent.name}/{f.name}" for f in folders] == [
        "attention-dense/seed-0", "attention-dense/seed-1",
        "attention-linear/seed-0", "attention-linear/seed-1",
    ]  # fmt: skip
    summary = json.loads((out / "results.json").read_text())
    assert (out / "compare.md").read_text().count("| attention=") == 2
    assert (out / "compare.png").stat().st_size > 0
    for run in summary["runs"]:
        for split in ("valid", "test"):
            assert main(["eval", run["folder"], "--split", split, "--json"]) == 0
            evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert run["scores"][f"{split}_bpb"] == pytest.approx(evaluated["bits_per_byte"],
                                                                  rel=1e-6)  # fmt: skip
        assert run["steps"] == 40 and run["parameters"] > 0 and run["tokens_per_s"] > 0
        assert run["curve"] and run["peak_memory"] > 0 and run["wall_seconds"] > run["seconds"]
    rows = {row["variant"]: row for row in summary["rows"]}
    dense = [r["scores"]["test_bpb"] for r in summary["runs"] if r["variant"] == "attention=dense"]
    assert rows["attention=dense"]["test_bpb"][0] == pytest.approx(sum(dense) / 2)


def test_a_bad_setting_is_refused_before_anything_trains(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--vary", "attention=dense,magic", "--steps", "1", "--out", str(out)]
    assert main(argv) == 2
    assert "magic" in capsys.readouterr().err and not out.exists()
    assert main(["compare", "--vary", "widht=1,2", "--steps", "1", "--out", str(out)]) == 2
    assert "no setting 'widht'" in capsys.readouterr().err
    assert main(["compare", "--vary", "seed=1,2", "--steps", "1", "--out", str(out)]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_whole_variants_combine_with_every_varied_setting(tmp_path):
    cfg = CompareOptions(variants=("attention=dense", "model=xl xl.memory=64"),
                         vary=("lr=0.001,0.002",), seeds=2, steps=3, out=str(tmp_path))  # fmt: skip
    runs = plan(cfg)
    assert len(runs) == 8 and [r.seed for r in runs] == [0] * 4 + [1] * 4  # seed-major
    assert runs[2].variant == "model=xl, xl.memory=64, lr=0.001"
    flags = ["--model", "xl", "--xl.memory", "64", "--lr", "0.001", "--seed", "0"]
    assert runs[2].argv[-10:-2] == flags
    assert runs[2].folder == tmp_path / "model-xl+xl.memory-64+lr-0.001" / "seed-0"
