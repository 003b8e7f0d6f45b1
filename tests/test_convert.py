"""`attnlab convert`: randomly initialised HF GPT-2 and BERT models, built and saved here,
converted into run folders (same logits, same greedy text) and back (exactly the same
weights). Offline: nothing is downloaded."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers

import attnlab
from attnlab.cli import main
from attnlab.data.tokenizers import train_tokenizer
from tests.look_runs import make_run, require, tiny_config

transformers = require("transformers")
transformers.logging.set_verbosity_error()
CORPUS = ["the cat sat on the mat, and the dog sat on the log. " * 30]


def save_tokenizer(inner: HFTokenizer, folder) -> None:
    """The tokenizer files `save_pretrained` writes for a fast tokenizer."""
    wrapped = transformers.PreTrainedTokenizerFast(tokenizer_object=inner)
    wrapped.save_pretrained(str(folder))


def randomise(model: torch.nn.Module) -> torch.nn.Module:
    """Weights far from their initial values (LayerNorms included), so a wrong map shows."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    tokenizer = train_tokenizer("bpe", CORPUS, 300)
    cfg = transformers.GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=48, n_embd=32,
                                  n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)  # fmt: skip
    gpt2 = randomise(transformers.GPT2LMHeadModel(cfg))
    gpt2.save_pretrained(str(folder))
    save_tokenizer(tokenizer.hf, folder)
    return folder, gpt2


def wordpiece() -> HFTokenizer:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat",
             "dog", "log", "and", ",", ".", "##s", "a"]  # fmt: skip
    inner = HFTokenizer(models.WordPiece({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    inner.normalizer = normalizers.BertNormalizer(lowercase=True)
    inner.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    inner.decoder = decoders.WordPiece()
    return inner


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert")
    cfg = transformers.BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=24)  # fmt: skip
    bert = randomise(transformers.BertForMaskedLM(cfg))
    bert.save_pretrained(str(folder))
    save_tokenizer(wordpiece(), folder)
    return folder, bert


def convert(*args: str) -> None:
    assert main(["convert", *map(str, args)]) == 0


def test_gpt2_gives_the_same_logits_and_the_same_greedy_text(gpt2_folder, tmp_path):
    folder, gpt2 = gpt2_folder
    convert("--from-hf", folder, "--out", tmp_path / "run")
    lm = attnlab.load(tmp_path / "run")
    assert isinstance(lm, attnlab.LanguageModel) and lm.cfg.activation == "gelu_tanh"
    tokens = torch.randint(0, lm.cfg.vocab_size, (2, 48))
    with torch.no_grad():
        assert (lm(tokens) - gpt2(tokens).logits).abs().max() < 1e-4
        prompt = tokens[:1, :6]
        theirs = gpt2.generate(prompt, max_new_tokens=30, do_sample=False, pad_token_id=0)
    assert torch.equal(lm.generate(prompt, 30, temperature=0), theirs)


def test_a_converted_gpt2_runs_every_command(gpt2_folder, tmp_path, capsys):
    folder, _ = gpt2_folder
    run = tmp_path / "run"
    convert("--from-hf", folder, "--out", run)
    text = tmp_path / "text.txt"
    text.write_text(CORPUS[0])
    assert main(["eval", str(run), "--data", str(text), "--split", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["bits_per_byte"] > 0
    assert main(["generate", str(run), "--prompt", "the cat", "--tokens", "5", "--seed", "0"]) == 0
    assert main(["look", str(run), "--text", "the cat sat"]) == 0
    assert (run / "attention.html").is_file()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    a, b = a.state_dict(), b.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("which", ["gpt2", "bert"])
def test_attnlab_to_hf_and_back_is_exact(which, gpt2_folder, bert_folder, tmp_path):
    folder, hf_model = gpt2_folder if which == "gpt2" else bert_folder
    convert("--from-hf", folder, "--out", tmp_path / "run")
    convert(tmp_path / "run", "--to-hf", tmp_path / "hf")
    convert("--from-hf", tmp_path / "hf", "--out", tmp_path / "again")
    first, again = attnlab.load(tmp_path / "run"), attnlab.load(tmp_path / "again")
    assert first.cfg == again.cfg and same_weights(first, again)
    assert (tmp_path / "again" / "tokenizer.json").read_text() == (
        tmp_path / "run" / "tokenizer.json"
    ).read_text()
    written = (
        transformers.AutoModelForCausalLM if which == "gpt2" else transformers.AutoModelForMaskedLM
    )
    reloaded = written.from_pretrained(str(tmp_path / "hf")).eval()
    tokens = torch.randint(0, first.cfg.vocab_size, (2, 20))
    with torch.no_grad():
        assert (reloaded(tokens).logits - hf_model(tokens).logits).abs().max() < 1e-4
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    ours = attnlab.runs.RunFolder(tmp_path / "run").tokenizer()
    text = "the cat sat on the log."
    assert hf_tokenizer(text, add_special_tokens=False)["input_ids"] == ours.encode(text).tolist()


def test_bert_gives_the_same_logits_with_padding(bert_folder, tmp_path):
    folder, bert = bert_folder
    convert("--from-hf", folder, "--out", tmp_path / "run")
    mlm = attnlab.load(tmp_path / "run")
    assert mlm.kind == "mlm" and mlm.cls_id == 2 and mlm.cfg.norm_eps == 1e-12
    tokens = torch.randint(0, 40, (2, 24))
    mask = torch.arange(24)[None] < torch.tensor([[24], [11]])
    with torch.no_grad():
        theirs = bert(tokens, attention_mask=mask.long()).logits
        ours = mlm(tokens, mask)
    assert (ours[0] - theirs[0]).abs().max() < 1e-4
    assert (ours[1, :11] - theirs[1, :11]).abs().max() < 1e-4
    assert main(["look", str(tmp_path / "run"), "--text", "The cats sat."]) == 0
    page = (tmp_path / "run" / "attention.html").read_text()
    assert '"text":"##s"' in page and '"names":["layer 1","layer 2"]' in page
    assert '"tokens":[{"text":"[CLS]"' in page and '{"text":"[SEP]","hint":"id 3"}]' in page


def test_bytes_run_becomes_an_hf_tokenizer_with_a_token_per_byte(tmp_path):
    run = make_run(tmp_path / "run", attnlab.LanguageModel(tiny_config(activation="gelu_tanh")))
    convert(run, "--to-hf", tmp_path / "hf")
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    text = "é, naïve ✓\n"
    assert hf_tokenizer(text)["input_ids"] == list(text.encode())
    assert hf_tokenizer.decode(list(text.encode())) == text


def error_of(capsys, args) -> str:
    assert main(["convert", *map(str, args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_pickled_weights_are_refused_with_the_way_out(gpt2_folder, tmp_path, capsys):
    folder, _ = gpt2_folder
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((folder / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"never unpickled")
    err = error_of(capsys, ["--from-hf", pickled, "--out", tmp_path / "run"])
    assert "pytorch_model.bin" in err and "safetensors only" in err and "save_pretrained" in err
    assert not (tmp_path / "run").exists()


def test_what_hf_cannot_express_is_named(tmp_path, capsys):
    rope = make_run(tmp_path / "rope", attnlab.LanguageModel(tiny_config(position="rope")))
    assert "--position rope has no equivalent in HF GPT-2" in error_of(
        capsys, [rope, "--to-hf", tmp_path / "hf"]
    )
    for setting, value, flag in [
        ("qk_norm", True, "--qk-norm"),
        ("value_residual", True, "--value-residual"),
        ("logit_cap", 30.0, "--logit-cap 30.0"),
        ("qkv_conv", 3, "--qkv-conv 3"),
    ]:
        run = make_run(tmp_path / setting, attnlab.LanguageModel(tiny_config(**{setting: value})))
        assert f"{flag} has no equivalent in HF GPT-2" in error_of(
            capsys, [run, "--to-hf", tmp_path / "hf"]
        )
    swiglu = make_run(tmp_path / "glu", attnlab.LanguageModel(tiny_config(activation="swiglu")))
    assert "--activation swiglu" in error_of(capsys, [swiglu, "--to-hf", tmp_path / "hf"])
    clf = make_run(tmp_path / "clf", attnlab.Classifier(tiny_config()), ["a", "b"])
    assert "a classifier has no HF form" in error_of(capsys, [clf, "--to-hf", tmp_path / "hf"])
    assert not (tmp_path / "hf").exists()


def test_bad_folders_and_flags(gpt2_folder, tmp_path, capsys):
    folder, _ = gpt2_folder
    other = tmp_path / "t5"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "t5"}')
    assert "model_type 't5'" in error_of(capsys, ["--from-hf", other, "--out", tmp_path / "r"])
    assert "--out" in error_of(capsys, ["--from-hf", folder])
    taken = tmp_path / "taken"
    convert("--from-hf", folder, "--out", taken)
    assert "already holds a run" in error_of(capsys, ["--from-hf", folder, "--out", taken])
    convert("--from-hf", folder, "--out", taken, "--overwrite")


def test_a_converted_bert_fills_masks_as_hf_does_and_starts_a_classifier(
    bert_folder, tmp_path, capsys
):
    folder, bert = bert_folder
    run = tmp_path / "run"
    convert("--from-hf", folder, "--out", run)
    capsys.readouterr()
    text = "the cat [MASK] on the mat."
    assert main(["fill-mask", str(run), "--text", text, "--top", "3", "--json"]) == 0
    (ours,) = json.loads(capsys.readouterr().out.splitlines()[-1])["masks"]

    words = wordpiece()  # the same input built by hand: [CLS] the cat [MASK] on the mat. [SEP]
    ids = [2, *words.encode("the cat").ids, 4, *words.encode("on the mat.").ids, 3]
    with torch.no_grad():
        logits = bert(torch.tensor([ids])).logits[0, ids.index(4)]
    logits[:5] = float("-inf")  # the special tokens are never offered,
    logits[words.get_vocab_size() :] = float("-inf")  # nor ids the tokenizer cannot write
    probs, best = logits.softmax(-1).topk(3)
    assert [c["id"] for c in ours] == best.tolist()
    got = torch.tensor([c["probability"] for c in ours], dtype=probs.dtype)
    assert (got - probs).abs().max() < 1e-4

    assert attnlab.runs.RunFolder(run).settings()["task"] == "mlm"
    text_file = tmp_path / "text.txt"
    text_file.write_text(CORPUS[0])
    assert main(["eval", str(run), "--data", str(text_file), "--split", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["pseudo_perplexity"] > 1

    data = tmp_path / "small.csv"
    rows = [f"the {a} sat,{a}" for a in ("cat", "dog")] * 8
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    args = ["train", "classify", "--init", str(run), "--data", str(data), "--steps", "2"]
    assert main([*args, "--out", str(tmp_path / "classifier"), "--batch-size", "4"]) == 0
    assert attnlab.load(tmp_path / "classifier").kind == "classifier"
