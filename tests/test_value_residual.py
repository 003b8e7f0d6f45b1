"""ResFormer's value residual (Zhou et al. 2024, eq. 5): the stack against the equation
written out in float64, the plain transformer as its special case, causality, one token at a
time = the whole sequence, a save/load round trip, the optimizer's groups, and the refusals."""

import pytest
import torch

import attnlab
from attnlab import LanguageModel, ModelConfig
from attnlab.config import ConfigError
from attnlab.models.stack import build_stack
from attnlab.training.optimizers.muon import hidden_matrices

from .reference import allowed_positions, assert_causal, softmax_attention


def config(**settings) -> ModelConfig:
    base = dict(vocab_size=16, context=24, depth=3, width=32, heads=4, value_residual=True)
    return ModelConfig(**{**base, **settings})


def with_random_mix(module: torch.nn.Module) -> torch.nn.Module:
    """Mixing weights away from their start, so a wrong index or a swapped pair shows."""
    stack = getattr(module, "stack", module)
    with torch.no_grad():
        stack.value_keep.uniform_(0.2, 1.5)
        stack.value_first.uniform_(-1.0, 1.0)
    return module


def written_out(stack, x: torch.Tensor) -> torch.Tensor:
    """Pre-norm blocks in float64, head by head; block n > 1 attends over λ_n V_n + μ_n V_1."""
    b, t, _ = x.shape
    first = None
    for n, block in enumerate(stack.blocks):
        attention = block.attention
        h, d = attention.heads, attention.head_dim
        qkv = (block.norm1(x) @ attention.to_qkv.weight.T + attention.to_qkv.bias).view(
            b, t, 3, h, d
        )
        q, k, v = qkv.unbind(2)  # (b, t, h, d) each
        if first is None:
            first = v
        else:
            v = stack.value_keep[n - 1] * v + stack.value_first[n - 1] * first
        allowed = allowed_positions(t, t, causal=True)
        heads = [
            torch.stack(
                [softmax_attention(q[i, :, j], k[i, :, j], v[i, :, j], allowed) for j in range(h)],
                dim=1,
            )  # fmt: skip
            for i in range(b)
        ]
        x = x + attention.unify_heads(torch.stack(heads).flatten(2))
        x = x + block.feed_forward(block.norm2(x))
    return x


def test_stack_matches_the_written_out_equation():
    stack = with_random_mix(build_stack(config())).double()
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(stack(x, causal=True), written_out(stack, x))


def test_keeping_every_value_and_none_of_the_first_is_the_plain_transformer():
    mixed = LanguageModel(config()).eval()
    plain = LanguageModel(config(value_residual=False)).eval()
    plain.load_state_dict(mixed.state_dict(), strict=False)
    with torch.no_grad():
        mixed.stack.value_keep.fill_(1.0)
        mixed.stack.value_first.fill_(0.0)
    tokens = torch.randint(0, 16, (2, 20))
    torch.testing.assert_close(mixed(tokens), plain(tokens))


@pytest.mark.parametrize("attention", ["dense", "linear"])
def test_no_position_sees_a_later_one(attention):
    assert_causal(
        with_random_mix(LanguageModel(config(attention=attention))).double().eval(), vocab=16
    )


@pytest.mark.parametrize("attention", ["dense", "linear"])
def test_one_token_at_a_time_equals_the_whole_sequence(attention):
    model = with_random_mix(LanguageModel(config(attention=attention, position="rope")))
    model = model.double().eval()
    tokens = torch.randint(0, 16, (2, 20))
    state = model.new_state()
    steps = [model(tokens[:, :3], state)]  # a prompt, then single tokens
    steps += [model(tokens[:, i : i + 1], state) for i in range(3, 20)]
    torch.testing.assert_close(torch.cat(steps, dim=1), model(tokens))


def test_round_trip_keeps_the_mixing_weights(tmp_path):
    model = with_random_mix(LanguageModel(config())).eval()
    model.save(tmp_path / "run")
    loaded = attnlab.load(tmp_path / "run")
    assert loaded.cfg.value_residual
    tokens = torch.randint(0, 16, (2, 16))
    assert torch.equal(loaded(tokens), model(tokens))


def test_mixing_weights_train_and_are_not_muon_matrices():
    model = LanguageModel(config())
    model(torch.randint(0, 16, (2, 10))).sum().backward()
    keep, first = model.stack.value_keep, model.stack.value_first
    assert keep.shape == first.shape == (2,)  # one pair per block after the first
    assert keep.grad is not None and first.grad.abs().sum() > 0
    hidden, rest = hidden_matrices(model)
    assert any(p is keep for p in rest) and not any(p is keep for p in hidden)


@pytest.mark.parametrize("settings", [dict(model="xl"), dict(attention="basic")])
def test_stacks_without_own_values_are_refused(settings):
    with pytest.raises(ConfigError, match="--value-residual"):
        config(**settings)


def test_sequence_to_sequence_refuses_it():
    from attnlab.models.seq2seq import Seq2Seq

    with pytest.raises(ConfigError, match="--value-residual"):
        Seq2Seq(config())
