"""The masked language model and the classifier started from it: the head against its
equation, the loss at the chosen positions only, padding, and an exact hand-over of weights."""

import pytest
import torch
import torch.nn.functional as F

import attnlab
from attnlab import Classifier, MaskedLM, ModelConfig
from attnlab.config import ConfigError, TrainConfig
from attnlab.models.mlm import IGNORE
from attnlab.training.loop import train
from tests.reference import relative_error
from tests.test_conformance import model_cases, real_lengths_mask, small_config

BERT_LAYOUT = dict(norm="post", activation="gelu", norm_eps=1e-12, embedding_norm=True)


def config(**overrides) -> ModelConfig:
    return ModelConfig(
        **{**dict(vocab_size=40, context=12, depth=2, width=16, heads=2), **overrides}
    )


def test_head_computes_layernorm_of_the_activation_then_the_tied_projection():
    """logits = LayerNorm(gelu(h W_t + b_t)) Eᵀ + b_out, in float64 (Devlin et al. 2019)."""
    mlm = MaskedLM(config(**BERT_LAYOUT)).double().eval()
    head = mlm.head
    with torch.no_grad():
        for p in head.parameters():
            p.normal_()
    h = torch.randn(3, 16, dtype=torch.float64)
    z = h @ head.dense.weight.T + head.dense.bias
    z = 0.5 * z * (1 + torch.erf(z / 2**0.5))
    z = (z - z.mean(-1, keepdim=True)) / torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + 1e-12)
    z = z * head.norm.weight + head.norm.bias
    expected = z @ mlm.embedding.tokens.weight.T + head.output.bias
    assert relative_error(head(h), expected) < 1e-12
    assert head.output.weight is mlm.embedding.tokens.weight


def test_loss_is_the_cross_entropy_at_the_chosen_positions_only():
    mlm = MaskedLM(config()).eval()
    tokens = torch.randint(0, 40, (2, 12))
    targets = torch.full((2, 12), IGNORE)
    targets[0, 3], targets[1, 0], targets[1, 7] = 5, 9, 11
    loss, stats = mlm.loss(tokens, None, targets)
    logits = mlm(tokens)
    expected = F.cross_entropy(logits[[0, 1, 1], [3, 0, 7]], torch.tensor([5, 9, 11]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 <= stats["accuracy"] <= 1


def test_an_unchosen_positions_target_changes_nothing():
    """Two texts that agree at the chosen positions give the same loss and gradients."""
    mlm = MaskedLM(config()).train()
    tokens = torch.randint(0, 40, (2, 12))
    chosen = torch.zeros(2, 12, dtype=torch.bool)
    chosen[0, 4], chosen[1, 1], chosen[1, 10] = True, True, True
    original = torch.randint(0, 40, (2, 12))
    other = torch.where(chosen, original, (original + 1) % 40)

    def loss_and_grads(text):
        mlm.zero_grad()
        torch.manual_seed(0)  # the same dropout draws
        loss, _ = mlm.loss(tokens, None, torch.where(chosen, text, IGNORE))
        loss.backward()
        return loss, [p.grad.clone() for p in mlm.parameters()]

    (loss, grads), (other_loss, other_grads) = loss_and_grads(original), loss_and_grads(other)
    assert torch.equal(loss, other_loss)
    assert all(torch.equal(a, b) for a, b in zip(grads, other_grads, strict=True))


@pytest.mark.parametrize("stack, core", model_cases())
def test_encoder_output_ignores_padding(stack, core):
    mlm = MaskedLM(small_config(stack, core)).eval()
    lengths = [5, 24, 13]
    tokens = torch.randint(1, 30, (3, 24))
    batched = mlm(tokens, real_lengths_mask(lengths, 24))
    for i, n in enumerate(lengths):
        assert torch.allclose(batched[i, :n], mlm(tokens[i : i + 1, :n])[0], atol=1e-5)


def test_untied_output_has_its_own_matrix():
    mlm = MaskedLM(config(tie_weights=False))
    assert mlm.head.output.weight is not mlm.embedding.tokens.weight


def test_cls_id_must_be_a_token():
    with pytest.raises(ConfigError, match="cls_id 40"):
        MaskedLM(config(), cls_id=40)


def encoder_names(model):
    return [n for n in model.state_dict() if n.startswith(("embedding.", "stack.", "norm."))]


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
@pytest.mark.parametrize("layout", [{}, BERT_LAYOUT, {"position": "rope"}])
def test_from_pretrained_copies_the_encoder_and_pools_its_output(pooling, layout, tmp_path):
    mlm = MaskedLM(config(**layout), cls_id=2).eval()
    with torch.no_grad():  # trained-looking norms, so a missed copy would show
        for name, p in mlm.named_parameters():
            if "norm" in name:
                p.normal_()
    mlm.save(tmp_path)
    clf = Classifier.from_pretrained(tmp_path, num_classes=3, pooling=pooling).eval()
    encoder, copied = mlm.state_dict(), clf.state_dict()
    assert encoder_names(clf) and set(encoder_names(clf)) == set(encoder_names(mlm))
    assert all(torch.equal(copied[n], encoder[n]) for n in encoder_names(clf))

    lengths = [11, 6] if pooling == "cls" else [12, 6]  # CLS takes one position
    tokens = torch.randint(3, 40, (2, max(lengths)))
    mask = real_lengths_mask(lengths, max(lengths))
    if pooling == "cls":
        with_cls = torch.cat((torch.full((2, 1), 2), tokens), dim=1)
        pooled = mlm.encode(with_cls, torch.cat((torch.ones(2, 1, dtype=bool), mask), 1))[:, 0]
        assert torch.equal(clf.cls[0, 0], mlm.embedding.tokens.weight[2])
    else:
        hidden = mlm.encode(tokens, mask)
        if pooling == "mean":
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        else:
            pooled = hidden.masked_fill(~mask[..., None], float("-inf")).max(1).values
    assert torch.allclose(clf(tokens, mask), clf.head(pooled), atol=1e-5)


def test_from_pretrained_refuses_what_is_no_masked_language_model(tmp_path):
    attnlab.LanguageModel(config()).save(tmp_path)
    with pytest.raises(ConfigError, match="not a language model"):
        Classifier.from_pretrained(tmp_path, num_classes=2)
    with pytest.raises(ConfigError, match=r"\[CLS\]"):
        Classifier.from_pretrained(MaskedLM(config()), num_classes=2, pooling="cls")


def test_from_pretrained_may_change_the_dropout_only():
    mlm = MaskedLM(config(dropout=0.0), cls_id=2)
    clf = Classifier.from_pretrained(mlm, num_classes=2, pooling="mean", dropout=0.1)
    assert clf.cfg.dropout == 0.1 and clf.cfg.depth == mlm.cfg.depth


def test_layer_decay_scales_each_layer_by_its_distance_from_the_head():
    scales = Classifier(config(depth=3), 2, "cls").layer_scales(0.5)
    assert scales["head.weight"] == scales["head.bias"] == 1.0
    assert scales["stack.blocks.2.norm1.weight"] == 0.5
    assert scales["stack.blocks.0.attention.to_qkv.weight"] == 0.125
    assert scales["embedding.tokens.weight"] == scales["cls"] == 0.0625


class OneBatchTask:
    """The smallest task the training loop accepts: one fixed batch of a classifier."""

    plot, held_out = {}, ()

    def __init__(self):
        self.batch = (torch.randint(0, 40, (4, 12)), torch.ones(4, 12, dtype=torch.bool),
                      torch.tensor([0, 1, 0, 1]))  # fmt: skip

    def next_batch(self, progress):
        return self.batch

    def loss(self, objective, batch):
        return objective(*batch)

    def tokens_in(self, batch):
        return batch[0].numel()

    def train_metrics(self, loss):
        return {}


def test_the_optimiser_scales_each_layers_rate_and_leaves_frozen_weights_alone():
    clf = Classifier(config(depth=2), 2, "mean")
    clf.freeze_encoder()
    frozen = {n: p.clone() for n, p in clf.named_parameters() if not n.startswith("head.")}
    clf.lr_scales = {"head.weight": 0.5}
    cfg = TrainConfig(steps=3, warmup=0, lr=1e-2, min_lr=1e-2)
    run = train(clf, OneBatchTask(), cfg, torch.device("cpu"))
    groups = run.optimizer.param_groups
    trained = [p for group in groups for p in group["params"]]
    assert {id(p) for p in trained} == {id(clf.head.weight), id(clf.head.bias)}
    rates = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert rates[id(clf.head.weight)] == pytest.approx(0.5e-2)
    assert rates[id(clf.head.bias)] == pytest.approx(1e-2)
    assert all(torch.equal(p, frozen[n]) for n, p in clf.named_parameters() if n in frozen)


def bert_weights(bert, depth):
    """A HuggingFace BertForMaskedLM's weights under MaskedLM's names."""
    hf = bert.state_dict()
    emb = "bert.embeddings."
    ours = {
        "embedding.tokens.weight": hf[emb + "word_embeddings.weight"],
        # A single segment adds the same type vector at every position.
        "embedding.positions.embedding.weight": hf[emb + "position_embeddings.weight"]
        + hf[emb + "token_type_embeddings.weight"][0],
        "embedding.norm.weight": hf[emb + "LayerNorm.weight"],
        "embedding.norm.bias": hf[emb + "LayerNorm.bias"],
    }
    pairs = {
        "attention.unify_heads": "attention.output.dense",
        "norm1": "attention.output.LayerNorm",
        "feed_forward.0": "intermediate.dense",
        "feed_forward.2": "output.dense",
        "norm2": "output.LayerNorm",
    }
    for i in range(depth):
        theirs, mine = f"bert.encoder.layer.{i}.", f"stack.blocks.{i}."
        for part in ("weight", "bias"):
            qkv = [hf[f"{theirs}attention.self.{x}.{part}"] for x in ("query", "key", "value")]
            ours[f"{mine}attention.to_qkv.{part}"] = torch.cat(qkv)
            for a, b in pairs.items():
                ours[f"{mine}{a}.{part}"] = hf[f"{theirs}{b}.{part}"]
    head = "cls.predictions."
    for a, b in {"dense": "transform.dense", "norm": "transform.LayerNorm"}.items():
        for part in ("weight", "bias"):
            ours[f"head.{a}.{part}"] = hf[f"{head}{b}.{part}"]
    ours["head.output.bias"] = hf[head + "bias"]
    return ours


def test_a_huggingface_bert_maps_onto_the_model_weight_for_weight():
    transformers = pytest.importorskip("transformers")
    hf_cfg = transformers.BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=20, hidden_act="gelu",
    )  # fmt: skip
    bert = transformers.BertForMaskedLM(hf_cfg).eval()
    with torch.no_grad():
        for p in bert.parameters():
            p.normal_(0, 0.1)
    cfg = ModelConfig(vocab_size=50, context=20, depth=2, width=32, heads=4, **BERT_LAYOUT)
    mlm = MaskedLM(cfg).eval()
    missing = mlm.load_state_dict(bert_weights(bert, 2), strict=False).missing_keys
    assert missing == ["head.output.weight"]  # tied to the token embedding
    tokens = torch.randint(0, 50, (2, 20))
    mask = real_lengths_mask([20, 9], 20)
    expected = bert(input_ids=tokens, attention_mask=mask.long()).logits
    actual = mlm(tokens, mask)
    assert relative_error(actual[0], expected[0]) < 1e-5
    assert relative_error(actual[1, :9], expected[1, :9]) < 1e-5
