"""Masked language modelling through the command line: pretrain, resume, eval, fill-mask, and a
classifier started from the pretrained run (`train classify --init`)."""

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

import attnlab
from attnlab.cli import main
from attnlab.runs import RunFolder

SENTENCE = "the quick brown fox jumps over the lazy dog . "
SMALL = ["--context", "16", "--depth", "2", "--width", "32", "--heads", "2", "--batch-size", "16"]
SMALL += [
    "--position",
    "rope",
    "--vocab-size",
    "120",
    "--eval-every",
    "100",
    "--save-every",
    "100",
    "--eval-tokens",
    "64",
]


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def error_of(capsys, code):
    assert code == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with a repeated text, and the cache of encoded text kept inside it."""
    folder = tmp_path_factory.mktemp("mlm")
    (folder / "text.txt").write_text(SENTENCE * 400)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATTNLAB_CACHE", str(folder / "cache"))
        yield folder


@pytest.fixture(scope="module")
def pretrained(workspace):
    """A masked language model overfitted to the repeated text."""
    out = workspace / "mlm"
    args = ["train", "mlm", "--data", str(workspace / "text.txt"), "--out", str(out), *SMALL]
    assert main([*args, "--steps", "300", "--lr", "3e-3", "--warmup", "10"]) == 0
    return out


@pytest.fixture(scope="module")
def labelled(workspace):
    """A small two-class CSV of texts in the pretrained run's words."""
    path = workspace / "animals.csv"
    rows = [(f"the {a} fox jumps", "fox") for a in ("quick", "lazy", "brown")]
    rows += [(f"the {a} dog sleeps", "dog") for a in ("quick", "lazy", "brown")]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows * 6])
    return path


def test_fill_mask_puts_the_right_word_first_after_overfitting(pretrained, capsys):
    text = "the quick brown [MASK] jumps over the [MASK] dog ."
    assert main(["fill-mask", str(pretrained), "--text", text, "--top", "3", "--json"]) == 0
    result = last_json(capsys)
    first, second = result["masks"]
    assert first[0]["token"] == "fox" and second[0]["token"] == "lazy"
    assert len(first) == 3 and first[0]["probability"] > first[1]["probability"]
    assert result["filled"] == "the quick brown fox jumps over the lazy dog ."
    assert main(["fill-mask", str(pretrained), "--text", "the [MASK] brown fox"]) == 0
    assert "best: the quick brown fox" in capsys.readouterr().out


def test_eval_reports_masked_token_scores_and_pseudo_perplexity(pretrained, capsys):
    assert main(["eval", str(pretrained), "--split", "test", "--json"]) == 0
    result = last_json(capsys)
    assert result["accuracy"] > 0.9 and result["predicted"] > 0
    assert 1 <= result["pseudo_perplexity"] < 2 and result["pppl_tokens"] > 0
    assert json.loads((pretrained / "results.json").read_text())["test_accuracy"] > 0.9


def test_resumed_mlm_run_matches_an_uninterrupted_run(workspace, tmp_path):
    args = ["train", "mlm", "--data", str(workspace / "text.txt"), *SMALL, "--dropout", "0.1"]
    args += ["--save-every", "3"]
    assert main([*args, "--out", str(tmp_path / "a"), "--steps", "6"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--steps", "4"]) == 0
    assert main(["train", "mlm", "--resume", str(tmp_path / "b"), "--steps", "6"]) == 0
    straight = load_file(tmp_path / "a" / RunFolder.WEIGHTS)
    resumed = load_file(tmp_path / "b" / RunFolder.WEIGHTS)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def classify(labelled, out, *extra):
    args = ["train", "classify", "--data", str(labelled), "--out", str(out), "--batch-size", "8"]
    return main([*args, "--eval-every", "3", "--save-every", "3", *extra])


def test_init_starts_from_every_encoder_weight_and_freezing_keeps_them(
    pretrained, labelled, tmp_path
):
    out = tmp_path / "frozen"
    assert classify(labelled, out, "--init", str(pretrained), "--freeze-encoder",
                    "--pooling", "cls", "--steps", "3") == 0  # fmt: skip
    encoder = load_file(pretrained / RunFolder.WEIGHTS)
    clf = attnlab.load(out)
    weights = clf.state_dict()
    shared = [n for n in weights if n.startswith(("embedding.", "stack."))]
    assert shared and all(torch.equal(weights[n], encoder[n]) for n in shared)
    assert torch.equal(weights["cls"][0, 0], encoder["embedding.tokens.weight"][2])  # [CLS]
    assert (RunFolder(out).file("tokenizer.json").read_text()
            == (pretrained / "tokenizer.json").read_text())  # fmt: skip


def test_fine_tuning_from_a_pretrained_run_resumes_exactly(pretrained, labelled, tmp_path):
    extra = ["--init", str(pretrained), "--layer-decay", "0.7", "--dropout", "0.1"]
    assert classify(labelled, tmp_path / "a", *extra, "--steps", "6") == 0
    assert classify(labelled, tmp_path / "b", *extra, "--steps", "3") == 0
    assert main(["train", "classify", "--resume", str(tmp_path / "b"), "--steps", "6"]) == 0
    straight = load_file(tmp_path / "a" / RunFolder.WEIGHTS)
    resumed = load_file(tmp_path / "b" / RunFolder.WEIGHTS)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert attnlab.load(tmp_path / "a").cfg.dropout == 0.1


def test_bad_inputs_get_one_clear_line(pretrained, labelled, workspace, tmp_path, capsys):
    lm = tmp_path / "lm"
    assert main(["train", "lm", "--data", str(workspace / "text.txt"), "--out", str(lm),
                 "--context", "16", "--depth", "1", "--width", "16", "--heads", "2",
                 "--steps", "1", "--sample-tokens", "0"]) == 0  # fmt: skip
    capsys.readouterr()
    assert "takes a masked language model" in error_of(
        capsys, classify(labelled, tmp_path / "c1", "--init", str(lm), "--steps", "1")
    )
    message = error_of(capsys, classify(labelled, tmp_path / "c2", "--init", str(pretrained),
                                        "--tokenizer", "bytes", "--steps", "1"))  # fmt: skip
    assert "--tokenizer bytes" in message and "wordpiece" in message
    message = error_of(capsys, classify(labelled, tmp_path / "c3", "--init", str(pretrained),
                                        "--depth", "3", "--steps", "1"))  # fmt: skip
    assert "--depth" in message
    assert "give --init" in error_of(
        capsys, classify(labelled, tmp_path / "c4", "--layer-decay", "0.5", "--steps", "1")
    )
    assert "no [MASK]" in error_of(capsys, main(["fill-mask", str(pretrained), "--text", "a dog"]))
    assert "not a masked language model" in error_of(
        capsys, main(["fill-mask", str(lm), "--text", "a [MASK]"])
    )
    too_long = "the [MASK] " + "dog " * 20
    assert "at most 16" in error_of(
        capsys, main(["fill-mask", str(pretrained), "--text", too_long])
    )
    assert "--whole-word" not in error_of(
        capsys,
        main(
            [
                "train",
                "mlm",
                "--data",
                str(workspace / "nope.txt"),
                "--steps",
                "1",
                "--out",
                str(tmp_path / "m"),
            ]
        ),  # fmt: skip
    )
