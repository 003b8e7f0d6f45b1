import json

import pytest
import torch

import attnlab
from attnlab import Classifier, LanguageModel, ModelConfig
from attnlab.errors import UserError


def small(**overrides):
    return ModelConfig(
        **{**dict(vocab_size=40, context=16, depth=2, width=32, heads=4), **overrides}
    )


@pytest.mark.parametrize("tie", [True, False])
def test_language_model_round_trip_is_exact(tmp_path, tie):
    lm = LanguageModel(small(position="rope", tie_weights=tie)).eval()
    lm.save(tmp_path / "run")
    loaded = attnlab.load(tmp_path / "run")
    assert type(loaded) is LanguageModel and loaded.cfg == lm.cfg
    tokens = torch.randint(0, 40, (2, 16))
    assert torch.equal(loaded(tokens), lm(tokens))
    assert (loaded.head.weight is loaded.embedding.tokens.weight) == tie


def test_classifier_round_trip_keeps_classes_and_pooling(tmp_path):
    clf = Classifier(small(), num_classes=5, pooling="cls").eval()
    clf.save(tmp_path)
    loaded = attnlab.load(tmp_path)
    assert type(loaded) is Classifier
    assert (loaded.num_classes, loaded.pooling) == (5, "cls")
    tokens = torch.randint(0, 40, (3, 10))
    assert torch.equal(loaded(tokens), clf(tokens))


def test_missing_folder_or_file_names_it(tmp_path):
    with pytest.raises(UserError, match="no such run folder"):
        attnlab.load(tmp_path / "nowhere")
    LanguageModel(small()).save(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(UserError, match=r"model\.safetensors: missing"):
        attnlab.load(tmp_path)


def test_truncated_weights_give_a_clear_error(tmp_path):
    LanguageModel(small()).save(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UserError, match=r"model\.safetensors: unreadable or truncated"):
        attnlab.load(tmp_path)


def test_weights_of_another_shape_give_a_clear_error(tmp_path):
    LanguageModel(small()).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["width"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"model\.safetensors: .*shape"):
        attnlab.load(tmp_path)


def test_corrupt_or_newer_config_gives_a_clear_error(tmp_path):
    LanguageModel(small()).save(tmp_path)
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(UserError, match=r"config\.json: not valid JSON"):
        attnlab.load(tmp_path)
    path.write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(UserError, match="newer attnlab"):
        attnlab.load(tmp_path)
    config["model"]["width"] = 30
    path.write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"config\.json: --width 30 is not divisible"):
        attnlab.load(tmp_path)


def test_saving_never_unpickles_and_writes_only_safe_formats(tmp_path):
    LanguageModel(small()).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_compiled_or_wrapped_models_save_without_prefixes(tmp_path):
    lm = LanguageModel(small())
    wrapper = torch.nn.Module()
    wrapper._orig_mod = lm  # what torch.compile's OptimizedModule holds
    attnlab.checkpoint.save(wrapper, tmp_path)
    assert torch.equal(attnlab.load(tmp_path).embedding.tokens.weight, lm.embedding.tokens.weight)
