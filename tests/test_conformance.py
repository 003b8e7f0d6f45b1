"""The contract every registered variant keeps, tested for each one found in the registries:
a new attention core, layer stack or model kind gets these tests by registering, and its own
test file holds only what is specific to it.

Cores are tested at their default options and at each of their `bench_kinds`, on sequences
long enough (n = 150) for blocks, windows and landmarks to matter.
"""

from __future__ import annotations

import pytest
import torch

import attnlab
from attnlab import ModelConfig
from attnlab.attention import MultiHeadAttention
from attnlab.config import ConfigError
from attnlab.registry import ATTENTION, MODELS, STACKS
from tests.reference import relative_error

N = 150
WIDTH, HEADS = 16, 2


def core_cases() -> list:
    cases = []
    for name, core in ATTENTION.items():
        cases.append(pytest.param(name, {}, id=f"{name}-default"))
        for label, options in core.bench_kinds(N).items():
            cases.append(pytest.param(name, options, id=label))
    return cases


def provides(name: str, feature: str) -> bool:
    return feature in ATTENTION[name].provides


def layer(name: str, options: dict, position: str = "none") -> MultiHeadAttention:
    cfg = ModelConfig(vocab_size=16, context=N, depth=1, width=WIDTH, heads=HEADS,
                      attention=name, position=position, options={name: options})  # fmt: skip
    return MultiHeadAttention(cfg).double().eval()


def real_lengths_mask(lengths: list[int], n: int) -> torch.Tensor:
    return torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]


def causal_modes(name: str) -> list[bool]:
    return [False, True] if provides(name, "causal") else [False]


@pytest.mark.parametrize("name, options", core_cases())
def test_fast_path_equals_the_written_out_weights(name, options):
    """core(q, k, v) = weights(q, k) @ v (+ the core's skip term), in float64."""
    attention = layer(name, options)
    core, h, d = attention.core, attention.heads, attention.head_dim
    q, k, v = (torch.randn(2, h, N, d, dtype=torch.float64) for _ in range(3))
    for causal in causal_modes(name):
        for key_mask in (None, real_lengths_mask([N, 97], N)):
            out = core(q, k, v, key_mask=key_mask, causal=causal)
            weights = core.weights(q, k, key_mask=key_mask, causal=causal)
            skip = core.skip(v, key_mask)
            expected = weights @ v + (0 if skip is None else skip)
            real = key_mask if key_mask is not None else torch.ones(2, N, dtype=torch.bool)
            assert relative_error(out[:, :, real[1]], expected[:, :, real[1]]) < 1e-8


@pytest.mark.parametrize("name, options", core_cases())
def test_causal_attention_never_sees_the_future(name, options):
    if not provides(name, "causal"):
        pytest.skip(f"{name} is not causal")
    attention = layer(name, options)
    x = torch.randn(2, N, WIDTH, dtype=torch.float64)
    changed = x.clone()
    changed[:, 97:] = torch.randn(2, N - 97, WIDTH, dtype=torch.float64)
    before, after = attention(x, causal=True), attention(changed, causal=True)
    assert torch.allclose(before[:, :97], after[:, :97], atol=1e-12)
    assert not torch.allclose(before[:, 97:], after[:, 97:])


@pytest.mark.parametrize("name, options", core_cases())
def test_padding_never_changes_a_sequences_output(name, options):
    attention = layer(name, options)
    lengths = [40, N, 113]
    x = torch.randn(3, N, WIDTH, dtype=torch.float64)
    mask = real_lengths_mask(lengths, N)
    for causal in causal_modes(name):
        batched = attention(x, mask=mask, causal=causal)
        for i, n in enumerate(lengths):
            alone = attention(x[i : i + 1, :n], causal=causal)
            assert relative_error(batched[i, :n], alone[0]) < 1e-10


@pytest.mark.parametrize("name, options", core_cases())
def test_fully_padded_rows_and_their_gradients_stay_finite(name, options):
    attention = layer(name, options).float().train()
    x = torch.randn(2, 40, WIDTH, requires_grad=True)
    mask = torch.zeros(2, 40, dtype=torch.bool)
    mask[0, 30:] = True  # left padding: under a causal mask the first rows see only padding
    mask[1, :3] = True
    out = attention(x, mask=mask, causal=provides(name, "causal"))
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in attention.parameters() if p.grad is not None)


@pytest.mark.parametrize("position", ["none", "rope"])
@pytest.mark.parametrize("name, options", core_cases())
def test_cached_attention_equals_full_attention(name, options, position):
    if not provides(name, "cache"):
        pytest.skip(f"{name} keeps no incremental state")
    if position == "rope" and not provides(name, "qk"):
        pytest.skip(f"{name} has no queries or keys to rotate")
    attention = layer(name, options, position)
    x = torch.randn(2, N, WIDTH, dtype=torch.float64)
    full = attention(x, causal=True)
    state = attention.new_state(N)
    pieces = [attention(x[:, :60], causal=True, state=state)]
    pieces += [attention(x[:, i : i + 1], causal=True, state=state) for i in range(60, 70)]
    pieces += [attention(x[:, 70:], causal=True, state=state)]
    assert state.length == N
    assert relative_error(torch.cat(pieces, 1), full) < 1e-10


def model_cases() -> list:
    """Every layer stack with every attention core it can hold."""
    cases = []
    for stack in STACKS:
        for core in ATTENTION:
            try:
                ModelConfig(model=stack, attention=core, position="none", width=WIDTH,
                            heads=HEADS)  # fmt: skip
            except ConfigError:
                continue
            cases.append(pytest.param(stack, core, id=f"{stack}-{core}"))
    return cases


def small_config(stack: str, core: str) -> ModelConfig:
    """A small model; the core at its first benchmark kind for 24 tokens, so that blocks and
    landmarks are smaller than the text."""
    options = next(iter(ATTENTION[core].bench_kinds(24).values()), {})
    return ModelConfig(vocab_size=30, context=24, depth=2, width=WIDTH, heads=HEADS,
                       model=stack, attention=core, options={core: options})  # fmt: skip


@pytest.mark.parametrize("stack, core", model_cases())
def test_language_model_is_causal_and_caches_what_it_recomputes(stack, core):
    if not provides(core, "causal"):
        pytest.skip(f"{core} cannot be causal")
    lm = attnlab.LanguageModel(small_config(stack, core)).eval()
    tokens = torch.randint(0, 30, (2, 24))
    changed = tokens.clone()
    changed[:, 13:] = torch.randint(0, 30, (2, 11))
    assert torch.allclose(lm(tokens)[:, :13], lm(changed)[:, :13], atol=1e-6)
    prompt = tokens[:, :5]
    cached = lm.generate(prompt, 40, temperature=0)  # past the context
    assert torch.equal(cached, lm.generate(prompt, 40, temperature=0, use_cache=False))


@pytest.mark.parametrize("stack, core", model_cases())
def test_classifier_output_ignores_padding(stack, core):
    clf = attnlab.Classifier(small_config(stack, core), num_classes=3).eval()
    lengths = [5, 24, 13]
    tokens = torch.randint(1, 30, (3, 24))
    batched = clf(tokens, real_lengths_mask(lengths, 24))
    for i, n in enumerate(lengths):
        assert torch.allclose(batched[i], clf(tokens[i : i + 1, :n])[0], atol=1e-5)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("stack, core", model_cases())
def test_save_and_load_give_the_same_model(kind, stack, core, tmp_path):
    cls = MODELS[kind]
    try:
        model = cls(small_config(stack, core)).eval()
    except ConfigError:
        pytest.skip(f"a {cls.title} cannot hold {core} attention")
    inputs = model.example_inputs(2, 20)
    model.save(tmp_path)
    loaded = attnlab.load(tmp_path)
    assert type(loaded) is cls
    assert torch.equal(model(*inputs), loaded(*inputs))
