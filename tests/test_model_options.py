"""The model settings of the fast-training recipe, each against its equation in float64:
query/key normalisation, zero-initialised residual outputs, soft-capped logits, an untied
output layer without biases, and logits for the last positions only."""

import pytest
import torch

from attnlab import LanguageModel, ModelConfig
from attnlab.attention import MultiHeadAttention
from attnlab.config import ConfigError
from tests.reference import multi_head_attention, relative_error

RECIPE = dict(qk_norm=True, zero_init=True, logit_cap=15.0, tie_weights=False, bias=False)


def config(**overrides):
    base = dict(vocab_size=50, context=24, depth=2, width=16, heads=2)
    return ModelConfig(**{**base, **overrides})


@pytest.mark.parametrize("causal", [False, True])
def test_qk_norm_attention_is_its_equation(causal):
    layer = MultiHeadAttention(config(qk_norm=True)).double()
    x = torch.randn(2, 9, 16, dtype=torch.float64) * 5
    expected = multi_head_attention(layer, x, causal=causal, qk_norm=True)
    assert relative_error(layer(x, causal=causal), expected) < 1e-12
    assert relative_error(layer(x, causal=causal), multi_head_attention(layer, x, causal)) > 1e-3


def test_qk_norm_needs_queries_and_keys():
    with pytest.raises(ConfigError, match="--qk-norm"):
        config(attention="basic", qk_norm=True)


def test_zero_init_starts_every_block_as_the_identity():
    lm = LanguageModel(config(zero_init=True, tie_weights=False)).double()
    tokens = torch.randint(0, 50, (2, 24))
    x = lm.embedding(tokens)
    assert torch.equal(lm.stack(x, causal=True), x)
    assert torch.count_nonzero(lm(tokens)) == 0  # the untied output layer starts at zero too
    tied = LanguageModel(config(zero_init=True))
    assert torch.count_nonzero(tied.head.weight) > 0  # tied: it is the embedding


def test_soft_capped_logits_are_cap_tanh_of_the_plain_ones():
    capped = LanguageModel(config(logit_cap=2.0)).double()
    plain = LanguageModel(config()).double()
    with torch.no_grad():
        capped.head.weight.mul_(40)  # large logits, where the cap bites
    plain.load_state_dict(capped.state_dict())
    tokens = torch.randint(0, 50, (2, 24))
    expected = 2.0 * torch.tanh(plain(tokens) / 2.0)
    assert relative_error(capped(tokens), expected) < 1e-12
    assert capped(tokens).abs().max() < 2.0


def test_logits_of_the_last_positions_equal_the_full_ones():
    lm = LanguageModel(config(**RECIPE)).eval()
    tokens = torch.randint(0, 50, (3, 24))
    for last in (1, 7, 24):
        assert torch.allclose(lm(tokens, last=last), lm(tokens)[:, -last:], atol=1e-6)


@pytest.mark.parametrize("position", ["learned", "rope"])
def test_recipe_model_is_causal_and_caches_what_it_recomputes(position):
    lm = LanguageModel(config(**RECIPE, position=position, activation="relu2")).eval()
    for p in lm.parameters():  # out of the zero start, so every path carries signal
        torch.nn.init.normal_(p, std=0.3)
    tokens = torch.randint(0, 50, (2, 24))
    changed = tokens.clone()
    changed[:, 13:] = torch.randint(0, 50, (2, 11))
    assert torch.allclose(lm(tokens)[:, :13], lm(changed)[:, :13], atol=1e-6)
    cached = lm.generate(tokens[:, :5], 40, temperature=0)
    assert torch.equal(cached, lm.generate(tokens[:, :5], 40, temperature=0, use_cache=False))
    assert not any(name.endswith("bias") for name, _ in lm.named_parameters())


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_cpu_presets_build_their_recipe(name):
    from attnlab.config import TrainConfig
    from attnlab.tasks.lm import PRESETS, TextData

    preset = PRESETS[name]
    model = LanguageModel(ModelConfig(**{**preset["model"], "vocab_size": 2048}))
    assert model.cfg.qk_norm and model.cfg.zero_init and model.cfg.tie_weights
    assert model.cfg.value_residual and model.cfg.activation == "relu" and not model.cfg.logit_cap
    assert TrainConfig(**preset["train"]).optimizer == "muon"
    assert TextData(**preset["data"]).tokenizer == "bpe"
