"""Primer's depthwise convolution after q, k and v (So et al. 2021, §3): the written-out
equation, causality, and one token at a time = the whole sequence at once."""

import pytest
import torch

import attnlab
from attnlab import ModelConfig
from attnlab.attention.dconv import CausalDepthwiseConv
from attnlab.config import ConfigError

from .reference import assert_causal


def reference(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """y_j = Σ_i w_i ⊙ x_{j-k+1+i}, written out in float64, zero before the first position."""
    b, t, c = x.shape
    k = taps.shape[1]
    y = torch.zeros(b, t, c, dtype=torch.float64)
    for j in range(t):
        for i in range(k):
            source = j - k + 1 + i
            if source >= 0:
                y[:, j] += taps[:, i] * x[:, source]
    return y


def random_taps(conv: CausalDepthwiseConv) -> torch.Tensor:
    with torch.no_grad():
        conv.taps.normal_()
    return conv.taps.view(conv.channels, conv.kernel)


def test_convolution_matches_the_written_out_equation():
    conv = CausalDepthwiseConv(6, 3).double()
    taps = random_taps(conv)
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    torch.testing.assert_close(conv(x), reference(x, taps.detach()))


def test_convolution_gradients_match_the_equation():
    conv = CausalDepthwiseConv(6, 3).double()
    random_taps(conv)
    x = torch.randn(2, 9, 6, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 9, 6, dtype=torch.float64)
    (conv(x) * weights).sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    taps_ref = conv.taps.detach().view(6, 3).clone().requires_grad_()
    (reference(x_ref, taps_ref) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(conv.taps.grad.view(6, 3), taps_ref.grad)


def test_convolution_starts_as_the_identity():
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(CausalDepthwiseConv(4, 3)(x), x)


def language_model(**settings) -> attnlab.LanguageModel:
    cfg = ModelConfig(vocab_size=16, context=24, depth=2, width=32, heads=4, qkv_conv=3,
                      **settings)  # fmt: skip
    model = attnlab.LanguageModel(cfg).double().eval()
    for module in model.modules():
        if isinstance(module, CausalDepthwiseConv):
            random_taps(module)
    return model


@pytest.mark.parametrize("attention", ["dense", "sparse", "linear"])
def test_no_position_sees_a_later_one(attention):
    assert_causal(language_model(attention=attention), vocab=16)


@pytest.mark.parametrize("attention", ["dense", "sparse", "linear"])
def test_one_token_at_a_time_equals_the_whole_sequence(attention):
    model = language_model(attention=attention)
    tokens = torch.randint(0, 16, (2, 20))
    state = model.new_state()
    steps = [model(tokens[:, :3], state)]  # a prompt, then single tokens
    steps += [model(tokens[:, i : i + 1], state) for i in range(3, 20)]
    torch.testing.assert_close(torch.cat(steps, dim=1), model(tokens))


def test_generation_with_and_without_cache_agree_past_the_window():
    model = language_model()
    prompt = torch.randint(0, 16, (1, 5))
    cached = model.generate(prompt, 40, temperature=0)
    uncached = model.generate(prompt, 40, temperature=0, use_cache=False)
    assert torch.equal(cached, uncached)


def test_combinations_without_own_projections_are_refused():
    with pytest.raises(ConfigError, match="--qkv-conv"):
        ModelConfig(width=32, heads=4, qkv_conv=3, model="xl")
    with pytest.raises(ConfigError, match="--qkv-conv"):
        ModelConfig(width=32, heads=4, qkv_conv=3, attention="basic")
