import pytest
import torch
import torch.nn.functional as F

from attnlab import Classifier, LanguageModel, ModelConfig
from attnlab.config import ConfigError
from attnlab.models.sampling import filter_logits, sample_next

POSITIONS = ["learned", "sinusoidal", "rope", "alibi", "relative"]


def small(**overrides):
    base = dict(vocab_size=40, context=16, depth=2, width=32, heads=4)
    return ModelConfig(**{**base, **overrides})


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_language_model_is_causal(position, norm):
    lm = LanguageModel(small(position=position, norm=norm)).eval()
    tokens = torch.randint(0, 40, (2, 16))
    changed = tokens.clone()
    changed[:, 9:] = torch.randint(0, 40, (2, 7))
    assert torch.allclose(lm(tokens)[:, :9], lm(changed)[:, :9], atol=1e-6)
    assert not torch.allclose(lm(tokens)[:, 9:], lm(changed)[:, 9:])


def test_mean_pooled_classifier_without_positions_is_permutation_invariant():
    clf = Classifier(small(position="none"), num_classes=3).eval()
    tokens = torch.randint(0, 40, (4, 12))
    perm = torch.randperm(12)
    assert torch.allclose(clf(tokens), clf(tokens[:, perm]), atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
@pytest.mark.parametrize("position", POSITIONS)
def test_padded_batch_gives_each_sequence_its_own_output(pooling, position):
    clf = Classifier(small(position=position), num_classes=3, pooling=pooling).eval()
    lengths = [5, 12, 9]
    texts = [torch.randint(1, 40, (n,)) for n in lengths]
    tokens = torch.zeros(3, 12, dtype=torch.long)
    mask = torch.zeros(3, 12, dtype=torch.bool)
    for i, text in enumerate(texts):
        tokens[i, : len(text)] = text
        mask[i, : len(text)] = True
    batched = clf(tokens, mask)
    for i, text in enumerate(texts):
        alone = clf(text[None])
        assert torch.allclose(batched[i], alone[0], atol=1e-5)


@pytest.mark.parametrize("position", POSITIONS)
def test_cached_generation_equals_uncached_past_the_context(position):
    lm = LanguageModel(small(position=position, context=12)).eval()
    prompt = torch.randint(0, 40, (2, 5))
    cached = lm.generate(prompt, 40, temperature=0)
    uncached = lm.generate(prompt, 40, temperature=0, use_cache=False)
    assert cached.shape == (2, 45)
    assert torch.equal(cached, uncached)


def test_generation_from_a_prompt_longer_than_the_context():
    lm = LanguageModel(small(context=8)).eval()
    prompt = torch.randint(0, 40, (1, 20))
    assert torch.equal(
        lm.generate(prompt, 10, temperature=0),
        lm.generate(prompt, 10, temperature=0, use_cache=False),
    )


def test_sampling_with_a_seed_is_reproducible():
    lm = LanguageModel(small()).eval()
    prompt = torch.randint(0, 40, (1, 3))
    a = lm.generate(prompt, 20, temperature=1.0, seed=7)
    b = lm.generate(prompt, 20, temperature=1.0, seed=7)
    assert torch.equal(a, b)


def test_top_k_never_samples_a_filtered_token():
    logits = torch.randn(64, 30)
    allowed = torch.topk(logits, 3, dim=-1).indices
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        token = sample_next(logits, 1.0, top_k=3, generator=generator)
        assert (allowed == token[:, None]).any(-1).all()


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(filter_logits(probs.log(), top_p=0.75))
    assert kept.tolist() == [[True, True, False, False]]
    generator = torch.Generator().manual_seed(0)
    logits = probs.log().expand(500, 4)
    tokens = sample_next(logits, 1.0, top_p=0.75, generator=generator)
    assert set(tokens.tolist()) == {0, 1}


def test_top_p_always_keeps_the_most_likely_token():
    logits = torch.tensor([[5.0, 0.0, 0.0]])
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).tolist() == [[True, False, False]]


def test_config_reports_bad_settings_by_name():
    with pytest.raises(ConfigError, match="--width 30 is not divisible by --heads 4"):
        small(width=30)
    with pytest.raises(ConfigError, match="--attention: 'nope' is not one of: dense"):
        small(attention="nope")
    with pytest.raises(ConfigError, match="--nystrom.landmarks applies to --attention nystrom"):
        small(options={"nystrom": {"landmarks": 8}})
    with pytest.raises(ConfigError, match="--sparse.block: must be at least 1, got 0"):
        small(attention="sparse", options={"block": 0})


def test_tied_weights_share_one_tensor():
    lm = LanguageModel(small())
    assert lm.head.weight is lm.embedding.tokens.weight
    assert LanguageModel(small(tie_weights=False)).head.weight is not lm.embedding.tokens.weight


def test_tiny_model_overfits_a_repeated_text():
    torch.manual_seed(0)
    text = torch.tensor(list(b"the quick brown fox jumps over the lazy dog. " * 4))
    lm = LanguageModel(small(vocab_size=256, context=32, width=64))
    optimizer = torch.optim.AdamW(lm.parameters(), lr=3e-3)
    windows = text.unfold(0, 33, 1)  # every window of 33 bytes
    for _ in range(150):
        batch = windows[torch.randint(0, len(windows), (16,))]
        loss, _ = lm.loss(batch[:, :-1], batch[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    lm.eval()
    final = F.cross_entropy(lm(windows[:, :-1]).flatten(0, 1), windows[:, 1:].flatten())
    assert final.item() < 0.05
