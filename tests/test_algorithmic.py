"""`attnlab train algorithmic`: the NTM paper's tasks as data, learning, the command line end
to end (train, eval, resume) and its errors."""

import json

import pytest
import torch
from safetensors.torch import load_file

import attnlab
from attnlab import ModelConfig
from attnlab.cli import main
from attnlab.data.algorithmic import REPEAT_SCALE, Layout, generate
from attnlab.tasks.algorithmic_report import score


def batch_of(task, length, repeats=1, bits=4, batch=3, seed=0):
    return generate(Layout(task, bits), batch, length, torch.Generator().manual_seed(seed), repeats)


def test_copy_asks_for_the_input_after_the_delimiter():
    b = batch_of("copy", 5)
    assert b.inputs.shape == (3, 11, 6) and b.targets.shape == (3, 11, 4)
    assert torch.equal(b.inputs[:, 5, 4:], torch.tensor([[1.0, 0.0]] * 3))  # the delimiter
    assert torch.equal(b.targets[:, 6:], b.inputs[:, :5, :4])
    assert b.scored.tolist() == [False] * 6 + [True] * 5
    assert b.inputs[:, 6:].abs().sum() == 0  # nothing to read while answering


def test_repeat_copy_repeats_and_ends_with_a_marker():
    b = batch_of("repeat-copy", 3, repeats=4)
    assert b.inputs.shape[1] == 3 + 1 + 12 + 1 and b.targets.shape[-1] == 5
    assert torch.allclose(b.inputs[:, 3, 5], torch.tensor(4 / REPEAT_SCALE))
    assert torch.equal(b.targets[:, 4:16, :4], b.inputs[:, :3, :4].repeat(1, 4, 1))
    assert b.targets[:, 16, 4].tolist() == [1.0] * 3 and b.targets[:, :16, 4].sum() == 0


def test_associative_recall_answers_with_the_item_after_the_query():
    b = batch_of("associative-recall", 4, batch=20)
    items = b.inputs[:, :16].reshape(20, 4, 4, 6)[:, :, 1:, :4]  # (b, item, vector, bits)
    assert (b.inputs[:, :16].reshape(20, 4, 4, 6)[:, :, 0, 4] == 1).all()
    query, answer = b.inputs[:, 17:20, :4], b.targets[:, 21:24]
    for n in range(20):
        i = next(i for i in range(3) if torch.equal(items[n, i], query[n]))
        assert torch.equal(answer[n], items[n, i + 1])
    assert b.scored.nonzero().flatten().tolist() == [21, 22, 23]


def test_priority_sort_answers_with_the_highest_priorities_first():
    b = batch_of("priority-sort", 10)
    assert b.inputs.shape[1] == 10 + 1 + 8
    for n in range(3):
        order = b.inputs[n, :10, 5].argsort(descending=True)[:8]
        assert torch.equal(b.targets[n, 11:], b.inputs[n, order, :4])


def test_the_same_seed_gives_the_same_sequences():
    assert torch.equal(batch_of("copy", 7, seed=3).inputs, batch_of("copy", 7, seed=3).inputs)
    assert not torch.equal(batch_of("copy", 7, seed=3).inputs, batch_of("copy", 7).inputs)


@pytest.mark.parametrize("kind", ["ntm", "dnc"])
def test_a_two_step_copy_is_learned_in_a_few_hundred_steps(kind, one_thread):
    cfg = ModelConfig(model=kind, width=32, heads=1,
                      options={kind: {"slots": 8, "slot_width": 8}})  # fmt: skip
    model = (attnlab.NTM if kind == "ntm" else attnlab.DNC)(cfg, inputs=6, outputs=4)
    layout, generator = Layout("copy", 4), torch.Generator().manual_seed(0)
    before = score(model, layout, 2, 256, seed=1, batch_size=256)["bit_error_per_sequence"]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        b = generate(layout, 16, 2, generator)
        loss, _ = model.loss(b.inputs, b.targets, b.scored)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = score(model, layout, 2, 256, seed=1, batch_size=256)["bit_error_per_sequence"]
    assert before > 2 and after < 0.25  # of 8 bits; guessing gets 4 wrong


SMALL = ["--bits", "4", "--max-length", "3", "--batch-size", "4", "--eval-sequences", "8",
         "--eval-every", "3", "--save-every", "3", "--width", "16"]  # fmt: skip
NTM = ["--ntm.slots", "12", "--ntm.slot-width", "6"]


def train(out, *extra, model=NTM):
    return main(["train", "algorithmic", "--task", "copy", "--out", str(out), *SMALL, *model,
                 *extra])  # fmt: skip


def test_train_eval_and_an_exact_resume(tmp_path, capsys, one_thread):
    assert train(tmp_path / "straight", "--steps", "6") == 0
    printed = capsys.readouterr().out
    assert "model: ntm, slots 12" in printed and "bit error per sequence by length" in printed
    for name in ("bit-error.png", "memory.png", "curves.png", "results.json"):
        assert (tmp_path / "straight" / name).is_file()
    assert train(tmp_path / "resumed", "--steps", "3") == 0
    assert (
        main(["train", "algorithmic", "--resume", str(tmp_path / "resumed"), "--steps", "6"]) == 0
    )
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)

    capsys.readouterr()
    assert main(["eval", str(tmp_path / "straight"), "--length", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["task"] == "copy" and result["length"] == 5
    assert 0 <= result["bit_error_per_sequence"] <= 4 * 5
    assert 0 <= result["sequence_accuracy"] <= 1
    assert isinstance(attnlab.load(tmp_path / "straight"), attnlab.NTM)


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_the_baselines_train_through_the_same_command(tmp_path, capsys, model, one_thread):
    assert train(tmp_path / model, "--model", model, "--steps", "2", model=[]) == 0
    printed = capsys.readouterr().out
    assert f"model: {model}" in printed and "memory.png" not in printed
    assert main(["eval", str(tmp_path / model), "--length", "2", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["length"] for row in result["by_length"]] == [2, 4]


def error_of(capsys, code):
    assert code == 2
    return capsys.readouterr().err


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out, "--steps", "1") == 0
    capsys.readouterr()
    message = error_of(capsys, main(["eval", str(out), "--length", "0"]))
    assert "--length: must be at least 1, got 0" in message
    message = error_of(capsys, main(["eval", str(out), "--length", "13"]))
    assert "--length 13" in message and "12 slots" in message and "--ntm.slots" in message
    message = error_of(capsys, train(tmp_path / "big", "--max-length", "20", "--steps", "1"))
    assert "--max-length 20" in message and "12 slots" in message
    message = error_of(capsys, main(["eval", str(out), "--task", "repeat-copy"]))
    assert "repeat-copy" in message and "channels" in message
    message = error_of(capsys, train(tmp_path / "m", "--min-length", "5", "--steps", "1"))
    assert "--min-length 5 is above --max-length 3" in message
    with pytest.raises(SystemExit):
        main(["train", "algorithmic", "--task", "sorting", "--steps", "1"])
    assert "invalid choice: 'sorting'" in capsys.readouterr().err
