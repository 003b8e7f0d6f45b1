"""`attnlab train TASK --config FILE`: JSON or YAML, laid over the preset, under the flags;
names and values checked with messages that name the file."""

import json

import pytest

from attnlab.cli import main
from attnlab.commands.base import command_parser
from attnlab.commands.train import RunOptions, resolve
from attnlab.errors import ConfigError, UserError
from attnlab.registry import COMMANDS, TASKS


def settings(*argv):
    parser = command_parser(COMMANDS["train lm"], "test")
    args = parser.parse_args(list(argv))
    return resolve(TASKS["lm"], RunOptions(**{k: v for k, v in vars(args).items()
                   if k in ("preset", "config", "out")}), args)  # fmt: skip


def write(path, text):
    path.write_text(text)
    return str(path)


def test_file_lies_over_the_preset_and_under_the_flags(tmp_path):
    yaml_file = write(tmp_path / "run.yaml", "model:\n  depth: 3\n  width: 96\n"
                      "  sparse.block: 16\n  attention: sparse\ntrain:\n  lr: 0.002\n")  # fmt: skip
    s = settings("--preset", "tiny", "--config", yaml_file, "--width", "64")
    assert (s.model.depth, s.model.width, s.model.heads) == (3, 64, 4)  # file, flag, preset
    assert s.model.options["sparse"]["block"] == 16
    assert s.train.lr == 0.002 and s.train.batch_size == 16  # file, preset
    json_file = write(tmp_path / "run.json", json.dumps({"model": {"depth": 2}}))
    assert settings("--config", json_file, "--steps", "1").model.depth == 2


def test_a_budget_in_the_file_replaces_the_presets_other_unit(tmp_path):
    path = write(tmp_path / "b.yaml", "train:\n  steps: 7\n")
    s = settings("--preset", "tiny", "--config", path)
    assert (s.train.steps, s.train.minutes) == (7, 0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("model:\n  depht: 3\n", "unknown setting 'depht'"),
        ("model:\n  width: many\n", "model.width: expected int"),
        ("model:\n  attention: magic\n", "'magic' is not one of"),
        ("train:\n  lr: -1\n", "train.lr: must be above 0"),
        ("model:\n  nystrom.landmarcs: 3\n", "nystrom has no option 'landmarcs'"),
        ("modle:\n  depth: 3\n", "unknown section(s) modle"),
        ("task: classify\n", "holds settings of a classify run"),
        ("model: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, text, message):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as error:
        settings("--config", path, "--steps", "1")
    assert path in str(error.value) and message in str(error.value)


def test_missing_file_and_resume_with_a_file_are_refused(tmp_path, capsys):
    with pytest.raises(UserError, match="no such settings file"):
        settings("--config", str(tmp_path / "none.yaml"), "--steps", "1")
    assert main(["train", "lm", "--resume", str(tmp_path), "--config", "x.yaml"]) == 2
    assert "--config starts a new run" in capsys.readouterr().err
