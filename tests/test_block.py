"""The block's pieces against their equations: activations, the feed-forward layer, norms."""

import math

import pytest
import torch

from attnlab import ModelConfig
from attnlab.block import Block, FeedForward
from attnlab.models.stack import InputEmbedding
from attnlab.registry import ACTIVATIONS
from tests.reference import relative_error


def config(**overrides):
    return ModelConfig(**{**dict(vocab_size=20, context=8, width=12, heads=2), **overrides})


def reference_activation(name, h):
    """float64, element by element where the paper writes it so."""
    if name == "relu":
        return h.clamp(min=0)
    if name == "relu2":
        return h.clamp(min=0) ** 2  # So et al. 2021
    if name == "gelu":
        return h * 0.5 * (1 + torch.erf(h / math.sqrt(2)))
    if name == "gelu_tanh":
        return 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    if name == "swiglu":  # Shazeer 2020, eq. 6: Swish(xW) ⊙ xV
        gate, value = h.chunk(2, dim=-1)
        return gate * torch.sigmoid(gate) * value
    raise KeyError(name)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_feed_forward_is_its_equation(name):
    layer = FeedForward(config(activation=name)).double()
    x = torch.randn(3, 5, 12, dtype=torch.float64)
    first, last = layer[0], layer[2]
    hidden = x @ first.weight.T + first.bias
    expected = reference_activation(name, hidden) @ last.weight.T + last.bias
    assert relative_error(layer(x), expected) < 1e-12


def test_a_gated_layer_keeps_the_parameter_count_of_an_ungated_one():
    def count(activation):
        return sum(
            p.numel() for p in FeedForward(config(width=48, activation=activation)).parameters()
        )

    assert abs(count("swiglu") - count("relu")) / count("relu") < 0.01


def test_embedding_norm_and_its_epsilon():
    embed = InputEmbedding(config(embedding_norm=True, norm_eps=1e-12))
    x = embed(torch.randint(0, 20, (2, 8)))
    assert embed.norm.eps == 1e-12
    assert torch.allclose(x.mean(-1), torch.zeros(2, 8), atol=1e-5)
    assert torch.allclose(x.var(-1, unbiased=False), torch.ones(2, 8), atol=1e-3)


@pytest.mark.parametrize("part", ["block", "embedding"])
def test_dropout_acts_in_training_only_and_not_at_zero(part):
    """Dropout is skipped outright when it would do nothing (generation's hot path); it must
    still drop in training when asked for, and never in evaluation."""

    def make(p):
        torch.manual_seed(0)
        return Block(config(dropout=p)) if part == "block" else InputEmbedding(config(dropout=p))

    x = torch.randn(2, 6, 12) if part == "block" else torch.randint(0, 20, (2, 6))
    dropping = make(0.5).train()
    assert not torch.equal(dropping(x), dropping(x))  # fresh draws each call
    quiet = make(0.0).train()
    assert torch.equal(quiet(x), make(0.5).eval()(x))  # p = 0 in training is evaluation


def test_learned_positions_are_the_rows_of_their_table():
    positions = InputEmbedding(config(position="learned")).positions
    table = positions.embedding.weight
    assert torch.equal(positions.embed(3, start=2), table[2:5])
    positions.embed(8).sum().backward()  # the slice carries gradients to the table
    assert torch.equal(table.grad, torch.ones_like(table))
