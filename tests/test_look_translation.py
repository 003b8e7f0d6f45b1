"""`attnlab look` on an encoder-decoder: the encoder's self-attention, the decoder's causal
self-attention and the cross-attention alignment of target and source (Vaswani et al. 2017,
§3.2.3; the alignment figures of Bahdanau et al. 2015)."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

import attnlab
from attnlab.attention import Core
from attnlab.cli import main
from attnlab.look.tokens import token_labels
from attnlab.runs import RunFolder
from tests.look_runs import make_run, tiny_config

S, T = 7, 5  # source and target lengths


def seq2seq(**settings) -> attnlab.Seq2Seq:
    torch.manual_seed(0)
    return attnlab.Seq2Seq(tiny_config(**settings))


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """A source, and what the decoder is fed: BOS (id 254 of 256) and target tokens."""
    source, target = torch.randint(0, 254, (S,)), torch.randint(0, 254, (T,))
    target[0] = 254
    return source, target


@pytest.mark.parametrize("layout", ["pre", "post"])
def test_cross_attention_is_softmax_of_the_layers_own_projections(layout):
    """Each decoder layer's cross-attention, written out in float64 from its query map (on
    what the decoder hands the layer) and its key map (on the encoder's output): the shape
    is target × source, every row sums to one."""
    model = seq2seq(norm=layout)
    source, target = inputs()
    maps = attnlab.translation_maps(model, source, target)
    wide = copy.deepcopy(model).double().eval()
    queries = []

    def keep(module, args):
        queries.append(args[0])  # what the decoder hands the cross-attention layer

    hooks = [b.cross_attention.register_forward_pre_hook(keep) for b in wide.decoder.blocks]
    with torch.no_grad():
        wide(source[None], target[None])
        memory = wide.encode(source[None])[0]  # (s, width)
    for hook in hooks:
        hook.remove()
    d = model.cfg.head_dim
    assert len(maps.cross.weights) == model.cfg.depth
    for block, x, weights in zip(wide.decoder.blocks, queries, maps.cross.weights, strict=True):
        attention = block.cross_attention
        q = x[0] @ attention.to_q.weight.T + attention.to_q.bias  # (t, h·d)
        k = (memory @ attention.to_kv.weight.T + attention.to_kv.bias)[:, : model.cfg.width]
        assert weights.shape == (1, model.cfg.heads, T, S)
        assert torch.allclose(weights.double().sum(-1), torch.ones(1, model.cfg.heads, T).double())
        for head in range(model.cfg.heads):
            part = slice(head * d, (head + 1) * d)
            expected = (q[:, part] @ k[:, part].T / math.sqrt(d)).softmax(-1)
            assert torch.allclose(weights[0, head].double(), expected, atol=1e-6)


def test_encoder_sees_everything_the_decoder_only_the_past():
    model = seq2seq(depth=3).train()
    source, target = inputs()
    maps = attnlab.translation_maps(model, source, target)
    assert model.training  # left as it was, without hooks
    assert all(not c._forward_pre_hooks for c in model.modules() if isinstance(c, Core))
    assert maps.encoder.stacked().shape == (3, 1, 3, S, S)
    assert maps.decoder.stacked().shape == (3, 1, 3, T, T)
    assert maps.cross.stacked().shape == (3, 1, 3, T, S)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    assert (maps.decoder.stacked()[..., future] == 0).all()
    assert (maps.encoder.stacked() > 0).all()
    assert maps.encoder.rollout() is not None
    assert maps.decoder.rollout() is None and maps.cross.rollout() is None
    with pytest.raises(ValueError, match="translation_maps"):
        attnlab.attention_maps(model, source)


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    """An encoder-decoder trained for two steps on the generated reversal task."""
    out = tmp_path_factory.mktemp("seq2seq") / "run"
    args = ["train", "seq2seq", "--data", "task:reverse", "--task-size", "40", "--max-length", "6"]
    args += ["--context", "12", "--depth", "2", "--width", "32", "--heads", "2", "--steps", "2"]
    assert main([*args, "--batch-size", "8", "--eval-sentences", "4", "--out", str(out)]) == 0
    return out


def page_groups(page) -> dict:
    data = page.read_text().split('id="attnlab-data">')[1].split("</script>")[0]
    return {g["id"]: g for g in json.loads(data.replace("<\\/", "</"))["groups"]}


def test_look_writes_the_three_groups_and_their_pngs(reverse_run, tmp_path, capsys):
    page, png = tmp_path / "page.html", tmp_path / "png"
    args = ["look", str(reverse_run), "--text", "abcd", "--target", "dcba"]
    assert main([*args, "--out", str(page), "--png", str(png)]) == 0
    assert capsys.readouterr().out.split()[0] == str(page)
    groups = page_groups(page)
    assert list(groups) == ["cross", "encoder", "decoder"]
    source = ["a", "b", "c", "d", "⟨eos⟩"]
    assert [k["text"] for k in groups["cross"]["keys"]] == source
    assert [q["text"] for q in groups["cross"]["queries"]] == ["d", "c", "b", "a", "⟨eos⟩"]
    assert [q["text"] for q in groups["decoder"]["queries"]] == ["⟨bos⟩", "d", "c", "b", "a"]
    assert [q["text"] for q in groups["encoder"]["queries"]] == source
    assert (groups["cross"]["t"], groups["cross"]["s"]) == (5, 5)
    assert "rollout" in groups["encoder"]["maps"] and "rollout" not in groups["cross"]["maps"]
    assert "seen" in groups["decoder"] and groups["cross"]["no_rollout"]
    for name in ("cross", "encoder", "decoder"):
        assert {"grid.png", "average.png", "lines.png"} <= {p.name for p in (png / name).iterdir()}
    assert (png / "encoder" / "rollout.png").is_file()


def test_without_a_target_the_model_aligns_its_own_translation(reverse_run, tmp_path):
    model, tokenizer = attnlab.load(reverse_run), RunFolder(reverse_run).tokenizer()
    source = [*tokenizer.encode("abcab").tolist(), model.eos_id]
    greedy = model.translate(torch.tensor([source]), beam=1)[0]
    page = tmp_path / "page.html"
    assert main(["look", str(reverse_run), "--text", "abcab", "--out", str(page)]) == 0
    cross = page_groups(page)["cross"]
    expected = [label["text"] for label in token_labels(tokenizer, greedy)] + ["⟨eos⟩"]
    expected = expected[: model.cfg.context]  # a translation that fills the context has no EOS
    assert (cross["t"], cross["s"]) == (len(expected), 6)
    assert [q["text"] for q in cross["queries"]] == expected


def test_target_is_refused_where_no_target_is_read(tmp_path, capsys):
    run = make_run(tmp_path / "run", attnlab.LanguageModel(tiny_config()))
    assert main(["look", run, "--text", "abc", "--target", "cba"]) == 2
    assert "--target" in capsys.readouterr().err


def test_a_source_or_target_past_the_context_is_refused(reverse_run, capsys):
    for extra in (["--text", "a" * 30], ["--text", "ab", "--target", "b" * 30]):
        assert main(["look", str(reverse_run), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and extra[-2] in err and "context of 12" in err
