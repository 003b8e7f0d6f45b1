"""The encoder-decoder: padding, causality, cross-attention, cached decoding, tying, the loss."""

import pytest
import torch

import attnlab
from attnlab import ModelConfig, Seq2Seq
from attnlab.config import ConfigError
from attnlab.models.seq2seq import IGNORE, CrossAttention, smoothed_loss
from attnlab.registry import ATTENTION
from tests.reference import relative_error

CROSS = [name for name, core in ATTENTION.items() if "cross" in core.provides]


def model(norm="post", attention="dense", position="sinusoidal", **settings) -> Seq2Seq:
    cfg = ModelConfig(vocab_size=23, context=20, depth=2, width=16, heads=2, norm=norm,
                      attention=attention, position=position)  # fmt: skip
    return Seq2Seq(cfg, **settings).double().eval()


def lengths_mask(lengths, n):
    return torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_encoder_and_logits_ignore_source_padding(norm):
    s2s = model(norm)
    lengths = [4, 11, 7]
    src = torch.randint(0, 21, (3, 11))
    tgt = torch.randint(0, 21, (3, 6))
    mask = lengths_mask(lengths, 11)
    memory, logits = s2s.encode(src, mask), s2s(src, tgt, mask)
    for i, n in enumerate(lengths):
        alone = src[i : i + 1, :n]
        assert relative_error(memory[i, :n], s2s.encode(alone)[0]) < 1e-10
        assert relative_error(logits[i], s2s(alone, tgt[i : i + 1])[0]) < 1e-10


def test_changing_padded_source_tokens_changes_nothing():
    s2s = model()
    src, tgt = torch.randint(0, 21, (2, 9)), torch.randint(0, 21, (2, 5))
    mask = lengths_mask([3, 9], 9)
    changed = src.clone()
    changed[0, 3:] = torch.randint(0, 21, (6,))
    assert torch.equal(s2s(src, tgt, mask), s2s(changed, tgt, mask))


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_decoder_never_sees_later_target_tokens(norm):
    s2s = model(norm)
    src, tgt = torch.randint(0, 21, (2, 8)), torch.randint(0, 21, (2, 10))
    changed = tgt.clone()
    changed[:, 6:] = torch.randint(0, 21, (2, 4))
    before, after = s2s(src, tgt), s2s(src, changed)
    assert torch.allclose(before[:, :6], after[:, :6], atol=1e-12)
    assert not torch.allclose(before[:, 6:], after[:, 6:])


@pytest.mark.parametrize("t", [3, 9, 14])
@pytest.mark.parametrize("core", CROSS)
def test_cross_attention_ignores_padded_source_positions(core, t):
    """Also when target and source have the same length: no query ever sees a padded key,
    not even the one at its own index."""
    cfg = ModelConfig(vocab_size=10, context=20, depth=1, width=16, heads=2, attention=core)
    layer = CrossAttention(cfg).double().eval()
    x, memory = torch.randn(2, t, 16, dtype=torch.float64), torch.randn(2, 9, 16).double()
    mask = lengths_mask([4, 9], 9)
    batched = layer(x, context=memory, mask=mask)
    for i, n in enumerate([4, 9]):
        alone = layer(x[i : i + 1], context=memory[i : i + 1, :n])
        assert relative_error(batched[i], alone[0]) < 1e-10
    projected = layer(x, context=layer.keys_values(memory), mask=mask)
    assert torch.allclose(projected, batched, atol=1e-12)


@pytest.mark.parametrize(
    "norm, attention, position",
    [("post", "dense", "sinusoidal"), ("pre", "dense", "learned"), ("pre", "dense", "rope"),
     ("post", "dense", "alibi"), ("pre", "linear", "sinusoidal"), ("post", "basic", "none")],
)  # fmt: skip
def test_cached_decoding_equals_the_full_forward(norm, attention, position):
    s2s = model(norm, attention, position).float()
    src, tgt = torch.randint(0, 21, (3, 12)), torch.randint(0, 21, (3, 15))
    mask = lengths_mask([12, 5, 9], 12)
    full = s2s(src, tgt, mask)
    keys = s2s.cross_keys(s2s.encode(src, mask))
    state = s2s.new_state()
    pieces = [s2s.decode(tgt[:, :4], keys, mask, state)]
    pieces += [s2s.decode(tgt[:, i : i + 1], keys, mask, state) for i in range(4, 15)]
    assert state.length == 15
    assert (torch.cat(pieces, dim=1) - full).abs().max() < 1e-5


def greedy_by_hand(s2s, src, mask, steps):
    """Greedy decoding written out: the whole prefix through the model at every step."""
    prefix = torch.full((src.shape[0], 1), s2s.bos_id)
    ended = torch.zeros(src.shape[0], dtype=torch.bool)
    for _ in range(steps):
        logits = s2s(src, prefix, mask)[:, -1]
        logits[:, s2s.bos_id] = float("-inf")
        token = torch.where(ended, s2s.eos_id, logits.argmax(-1))
        ended |= token == s2s.eos_id
        prefix = torch.cat((prefix, token[:, None]), dim=1)
    rows = prefix[:, 1:].tolist()
    return [row[: row.index(s2s.eos_id)] if s2s.eos_id in row else row for row in rows]


@pytest.mark.parametrize("attention", ["dense", "linear"])
def test_beam_of_one_is_greedy_and_cache_changes_no_result(attention):
    s2s = model("pre", attention)
    src = torch.randint(0, 21, (4, 9))
    mask = lengths_mask([9, 2, 6, 4], 9)
    greedy = s2s.translate(src, mask, beam=1, max_length=12)
    assert greedy == greedy_by_hand(s2s, src, mask, 12)
    for beam in (1, 3):
        cached = s2s.search(src, mask, beam=beam, max_length=12)
        uncached = s2s.search(src, mask, beam=beam, max_length=12, use_cache=False)
        assert cached.tokens == uncached.tokens
        assert cached.scores == pytest.approx(uncached.scores, abs=1e-9)


def test_a_wider_beam_scores_at_least_as_well_here_and_reports_the_models_score():
    s2s = model("pre")
    src = torch.randint(0, 21, (1, 6))
    greedy, wide = (s2s.search(src, beam=k, max_length=8, length_penalty=0.0) for k in (1, 6))
    assert wide.scores[0] >= greedy.scores[0] - 1e-12
    found = wide.tokens[0] + ([s2s.eos_id] if len(wide.tokens[0]) < 8 else [])
    logits = s2s(src, torch.tensor([[s2s.bos_id, *found[:-1]]]))[0]
    logits[:, s2s.bos_id] = float("-inf")  # the search never produces BOS
    logp = logits.log_softmax(-1)
    assert wide.scores[0] == pytest.approx(sum(logp[i, y].item() for i, y in enumerate(found)))


def test_three_way_tying_and_a_separate_source_vocabulary(tmp_path):
    shared = model()
    weights = {shared.source_embedding.tokens.weight, shared.target_embedding.tokens.weight,
               shared.head.weight}  # fmt: skip
    assert len({w.data_ptr() for w in weights}) == 1
    own = model(source_vocab_size=40, bos_id=0, eos_id=1)
    assert own.source_embedding.tokens.weight.shape == (40, 16)
    assert own.target_embedding.tokens.weight is own.head.weight
    own.save(tmp_path)
    loaded = attnlab.load(tmp_path).double()
    assert (loaded.bos_id, loaded.eos_id, loaded.source_vocab_size) == (0, 1, 40)
    src, tgt, mask = own.example_inputs(2, 10)
    assert torch.equal(own(src, tgt, mask), loaded(src, tgt, mask))


def test_embeddings_are_scaled_by_the_square_root_of_the_width():
    s2s = model(position="none")
    tokens = torch.tensor([[3, 4]])
    expected = s2s.target_embedding.tokens.weight[[3, 4]] * 16**0.5
    assert torch.allclose(s2s.target_embedding(tokens)[0], expected)


def test_what_it_cannot_be_built_from_is_refused():
    with pytest.raises(ConfigError, match="cross-attention"):
        model(attention="sparse")
    with pytest.raises(ConfigError, match="--model transformer"):
        Seq2Seq(ModelConfig(vocab_size=10, model="universal", width=16, heads=2))
    with pytest.raises(ConfigError, match="bos_id and eos_id"):
        model(bos_id=5, eos_id=5)
    with pytest.raises(ValueError, match="exceed the context"):
        model()(torch.zeros(1, 21, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))


def test_label_smoothed_loss_matches_a_float64_reference():
    logits = torch.randn(3, 5, 11)
    targets = torch.randint(0, 11, (3, 5))
    targets[1, 3:] = IGNORE
    epsilon = 0.1
    loss, nll, accuracy = smoothed_loss(logits, targets, epsilon)
    total, right, count = 0.0, 0, 0
    for b in range(3):
        for t in range(5):
            y = int(targets[b, t])
            if y == IGNORE:
                continue
            logp = logits[b, t].double().log_softmax(-1)
            q = torch.full((11,), epsilon / 11, dtype=torch.float64)
            q[y] += 1 - epsilon
            total += -(q * logp).sum().item()
            right += int(logp.argmax() == y)
            count += 1
    assert loss.item() == pytest.approx(total / count, rel=1e-6)
    assert accuracy.item() == pytest.approx(right / count)
    plain = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert nll.item() == pytest.approx(plain.item(), rel=1e-6)
