"""The hand-fused decoding step against the model's own forward with a cache."""

import pytest
import torch

from attnlab import LanguageModel, ModelConfig
from attnlab.models.decode import DecodeStep

VARIANTS = {
    "defaults": {},
    "recipe": dict(
        position="rope", qk_norm=True, zero_init=False, bias=False, value_residual=True, qkv_conv=3
    ),  # fmt: skip
    "post-norm, sinusoidal": dict(norm="post", position="sinusoidal"),
    "alibi, swiglu, untied, capped": dict(
        position="alibi", activation="swiglu", tie_weights=False, logit_cap=5.0
    ),  # fmt: skip
    "relative, relu2, wide heads": dict(
        position="relative", activation="relu2", head_mode="wide"
    ),  # fmt: skip
    "no positions, gelu": dict(position="none", activation="gelu"),
    "sparse, local": dict(attention="sparse", options={"sparse": {"pattern": "local", "block": 4}}),
    "sparse, strided": dict(attention="sparse", options={"sparse": {"block": 4}}),
}


def model(**overrides) -> LanguageModel:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=40, context=16, depth=3, width=32, heads=4, **overrides)
    return LanguageModel(cfg).eval()


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
@torch.no_grad()
def test_each_step_gives_the_forwards_logits(overrides):
    lm = model(**overrides)
    for p in lm.parameters():  # move every gain and bias off its initial value
        p.add_(0.05 * torch.randn_like(p))
    tokens = torch.randint(0, 40, (2, 12))
    ours, theirs = lm.new_state(), lm.new_state()
    assert DecodeStep.fits(lm, ours)
    step = DecodeStep(lm)
    lm(tokens[:, :4], ours)
    lm(tokens[:, :4], theirs)
    for i in range(4, 12):
        expected = lm(tokens[:, i : i + 1], theirs, last=1)[:, -1]
        got = step(tokens[:, i : i + 1], ours)
        assert got.shape == (2, 40)
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
        assert ours.length == theirs.length == i + 1


def test_generation_decodes_through_the_step(monkeypatch):
    calls = []
    original = DecodeStep.__call__
    monkeypatch.setattr(
        DecodeStep, "__call__", lambda self, *a: calls.append(1) or original(self, *a)
    )
    lm = model(position="rope", qkv_conv=3)
    prompt = torch.randint(0, 40, (1, 3))
    cached = lm.generate(prompt, 30, temperature=0)  # past the context: the window jumps
    assert calls
    assert torch.equal(cached, lm.generate(prompt, 30, temperature=0, use_cache=False))


@pytest.mark.parametrize(
    "overrides", [dict(model="xl"), dict(model="universal"), dict(attention="linear")]
)
def test_other_stacks_and_cores_keep_the_forward(overrides):
    lm = model(**overrides)
    assert not DecodeStep.fits(lm, lm.new_state())
