"""attention_maps, the page's data and `attnlab look`, without a browser (test_look_browser.py
opens the page in one)."""

from __future__ import annotations

import math

import pytest
import torch

import attnlab
from attnlab.attention import Core
from attnlab.cli import main
from attnlab.data.tokenizers import ByteTokenizer, train_tokenizer
from attnlab.look.page import decode, encode, page_data, render
from attnlab.look.tokens import token_labels
from tests import look_runs
from tests.look_runs import TEXT, make_run, tiny_config
from tests.reference import allowed_positions

KINDS = {
    "dense": {},
    "dense-rope": {"position": "rope"},
    "alibi": {"position": "alibi"},
    "sparse": {"attention": "sparse", "options": {"sparse": {"block": 4}}},
    "linear": {"attention": "linear"},
    "basic": {"attention": "basic", "width": 24},
    "universal": {"model": "universal", "options": {"universal": {"max_steps": 3}}},
    "xl": {"model": "xl", "options": {"xl": {"memory": 8}}},
}


def tokens(n: int) -> torch.Tensor:
    return torch.randint(0, 256, (n,))


@pytest.mark.parametrize("kind", KINDS)
def test_maps_are_what_each_core_multiplies_the_values_with(kind):
    """weights @ v (+ the core's skip term) = the core's output, call by call, whatever path
    the core computed it on."""
    lm = attnlab.LanguageModel(tiny_config(**KINDS[kind])).double()
    seen = []
    cores = [m for m in lm.modules() if isinstance(m, Core)]
    handles = [
        core.register_forward_hook(
            lambda m, args, kwargs, out: seen.append((m, args[2], kwargs, out)), with_kwargs=True
        )
        for core in cores
    ]
    maps = attnlab.attention_maps(lm, tokens(45 if kind == "xl" else 20))
    for handle in handles:
        handle.remove()
    calls = seen[-maps.layers :]  # Transformer-XL: the last segment's
    for weights, (core, v, kwargs, out) in zip(maps.weights, calls, strict=True):
        skip = core.skip(v, kwargs.get("key_mask"))
        expected = weights.double() @ v + (0 if skip is None else skip)
        assert torch.allclose(expected, out, atol=1e-5)


def test_first_layer_equals_softmax_of_the_models_own_projections():
    """The equation written out from the weights (Vaswani et al. 2017, eq. 1), float64."""
    lm = attnlab.LanguageModel(tiny_config()).double().eval()
    ids = tokens(12)
    maps = attnlab.attention_maps(lm, ids)
    block = lm.stack.blocks[0]
    x = block.norm1(lm.embedding(ids[None]))[0]  # (t, width)
    q, k, _ = (x @ block.attention.to_qkv.weight.T + block.attention.to_qkv.bias).chunk(3, -1)
    d = lm.cfg.head_dim
    for head in range(lm.cfg.heads):
        part = slice(head * d, (head + 1) * d)
        scores = q[:, part] @ k[:, part].T / math.sqrt(d)
        allowed = allowed_positions(12, 12, causal=True)
        expected = scores.masked_fill(~allowed, -math.inf).softmax(-1)
        assert torch.allclose(maps.weights[0][0, head].double(), expected, atol=1e-6)


def test_fused_and_reference_paths_give_the_same_maps():
    fused = attnlab.LanguageModel(tiny_config())
    written = attnlab.LanguageModel(tiny_config(options={"dense": {"path": "reference"}}))
    written.load_state_dict(fused.state_dict())
    ids = tokens(16)
    a, b = attnlab.attention_maps(fused, ids), attnlab.attention_maps(written, ids)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a.weights, b.weights, strict=True))


def test_maps_leave_the_model_as_they_found_it():
    lm = attnlab.LanguageModel(tiny_config(dropout=0.1)).train()
    maps = attnlab.attention_maps(lm, tokens(10))
    assert lm.training
    assert all(not core._forward_pre_hooks for core in lm.modules() if isinstance(core, Core))
    assert torch.allclose(maps.weights[0].sum(-1), torch.ones(1, 3, 10), atol=1e-5)  # no dropout


def test_every_layer_and_head_with_causal_rows():
    maps = attnlab.attention_maps(attnlab.LanguageModel(tiny_config(depth=3, heads=4)), tokens(9))
    assert maps.names == ["layer 1", "layer 2", "layer 3"]
    assert maps.stacked().shape == (3, 1, 4, 9, 9)
    future = torch.ones(9, 9, dtype=torch.bool).triu(1)
    assert (maps.stacked()[..., future] == 0).all()
    assert maps.seen[0, 0].equal(~future)


def test_sparse_maps_show_the_pattern_and_nothing_outside_it():
    lm = attnlab.LanguageModel(tiny_config(**KINDS["sparse"]))
    maps = attnlab.attention_maps(lm, tokens(20))
    pattern = lm.stack.blocks[0].attention.core.allowed(None, True, 20, 20, torch.device("cpu"))
    assert maps.seen.equal(pattern)
    assert (maps.stacked()[..., ~pattern[0, 0]] == 0).all()
    assert not pattern.all()


def test_nystrom_maps_come_with_the_exact_softmax():
    cfg = tiny_config(attention="nystrom", options={"nystrom": {"landmarks": 4}})
    clf = attnlab.Classifier(cfg).double()
    maps = attnlab.attention_maps(clf, tokens(20))
    assert maps.exact is not None and len(maps.exact) == 2
    for approx, exact in zip(maps.weights, maps.exact, strict=True):
        assert torch.allclose(exact.sum(-1), torch.ones_like(exact.sum(-1)), atol=1e-6)
        assert 0 < (approx.double() - exact.double()).abs().max() < 1  # an approximation


def test_universal_transformer_gives_a_map_per_step_and_ponder_counts():
    lm = attnlab.LanguageModel(tiny_config(**KINDS["universal"]))
    with torch.no_grad():  # make the first positions halt later than the rest
        lm.stack.halting.bias.fill_(-3.0)
    maps = attnlab.attention_maps(lm, tokens(12))
    steps = lm.stack.halting_weights.shape[-1]
    assert maps.names == [f"step {n}" for n in range(1, steps + 1)]
    assert maps.ponder.shape == (1, 12)
    assert maps.ponder.max().item() == steps and (maps.ponder >= 1).all()


def test_transformer_xl_shows_its_last_segment_over_the_memory():
    lm = attnlab.LanguageModel(tiny_config(**KINDS["xl"]))
    maps = attnlab.attention_maps(lm, tokens(70))  # 6 + 32 + 32: the last segment is whole
    assert (maps.memory, maps.first_query) == (8, 38)
    assert maps.weights[0].shape[-2:] == (32, 40)
    assert maps.stacked()[..., :8].sum() > 0  # the segment reads the memory
    assert maps.rollout() is None


def test_rollout_follows_abnar_and_zuidema():
    maps = attnlab.attention_maps(attnlab.LanguageModel(tiny_config()), tokens(8))
    eye = torch.eye(8, dtype=torch.float64)
    a1, a2 = (w[0].double().mean(0) for w in maps.weights)
    expected = (0.5 * a2 + 0.5 * eye) @ (0.5 * a1 + 0.5 * eye)
    assert torch.allclose(maps.rollout()[-1, 0].double(), expected, atol=1e-6)


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_classifier_attribution_is_rollout_from_what_the_pooling_reads(pooling):
    clf = attnlab.Classifier(tiny_config(), pooling=pooling)
    maps = attnlab.attention_maps(clf, tokens(10))
    assert maps.prefix == (1 if pooling == "cls" else 0)
    assert maps.attribution.shape == (1, 10 + maps.prefix)
    assert maps.attribution.sum().item() == pytest.approx(1.0, abs=1e-5)
    if pooling == "cls":
        assert torch.allclose(maps.attribution[0], maps.rollout()[-1, 0, 0])


def test_encoding_keeps_each_weight_to_within_one_level():
    x = torch.rand(4, 5, 7).softmax(-1)
    back = decode(encode(x)).view_as(x)
    assert ((back.sqrt() - x.double().sqrt()).abs() <= 0.5 / 255 + 1e-9).all()
    signed = torch.randn(3, 6)
    back = decode(encode(signed)).view_as(signed)
    scale = signed.abs().max()
    assert ((back / scale).abs().sqrt() - (signed / scale).abs().sqrt()).abs().max() <= 0.6 / 127


def test_tokens_are_shown_as_the_tokenizer_split_them():
    labels = token_labels(ByteTokenizer(), list("a é\n".encode()))
    assert [t["text"] for t in labels] == ["a", "␣", "⟨c3⟩", "⟨a9⟩", "↵"]
    assert labels[2]["hint"] == "id 195, bytes c3"
    bpe = train_tokenizer("bpe", ["the café, the hat, the mat " * 20], 300)
    shown = [t["text"] for t in token_labels(bpe, bpe.encode(" the café ü").tolist())]
    assert "␣café" in shown  # a merged piece whose bytes are whole UTF-8
    assert "".join(shown).endswith("␣⟨c3⟩⟨bc⟩")  # ü, never seen: two byte tokens


def test_page_is_one_file_that_reaches_for_nothing():
    maps = attnlab.attention_maps(attnlab.LanguageModel(tiny_config()), tokens(6))
    labels = token_labels(ByteTokenizer(), [60, 47, 115, 62, 32, 33])  # "</s> !"
    html = render(page_data(maps, labels, title="</script>", subtitle="x"))
    assert html.count("</script>") == 2  # the data's own one is escaped
    for reach in ("http://", "https://", "src=", "@import", "url(", "fetch("):
        assert reach not in html


def test_look_writes_the_page_and_pngs(tmp_path, capsys):
    run = make_run(tmp_path / "run", attnlab.Classifier(tiny_config()), ["no", "yes"])
    assert main(["look", run, "--text", TEXT, "--png", str(tmp_path / "png")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == str(tmp_path / "run" / "attention.html")
    html = (tmp_path / "run" / "attention.html").read_text()
    assert '"prediction":[[' in html and '"attribution":[' in html
    written = {p.name for p in (tmp_path / "png").iterdir()}
    assert written == {"grid.png", "average.png", "rollout.png", "lines.png", "attribution.png"}


def test_look_cuts_a_long_text_to_the_context_and_says_so(tmp_path, capsys):
    run = make_run(tmp_path / "run", attnlab.LanguageModel(tiny_config()))
    out = tmp_path / "page.html"
    assert main(["look", run, "--text", TEXT * 2, "--out", str(out)]) == 0
    assert "cut to its first 32 of" in out.read_text()


def test_look_refuses_bad_input_in_one_line(tmp_path, capsys):
    run = make_run(tmp_path / "run", attnlab.LanguageModel(tiny_config()))
    for args in (["look", run, "--text", ""], ["look", str(tmp_path / "none"), "--text", "x"],
                 ["look", run, "--text", "x", "--out", str(tmp_path)]):  # fmt: skip
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("attnlab: error:") and err.count("\n") == 1


def test_without_a_browser_ci_fails_and_elsewhere_skips(monkeypatch):
    monkeypatch.setattr(look_runs, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        look_runs.require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        look_runs.require_chromium()
