"""Text corpora for language models: sources, splits, downloads, cached encodings."""

import hashlib
import http.server
import threading
import zipfile
from functools import partial

import numpy as np
import pytest

from attnlab.data import text as text_module
from attnlab.data.encoded import encode_cached
from attnlab.data.text import load_text, read_enwik8, split_bytes, stdlib_files
from attnlab.data.tokenizers import train_tokenizer
from attnlab.errors import UserError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))


def test_splits_are_contiguous_and_cover_the_text():
    text = bytes(range(256)) * 4
    train, valid, test = split_bytes(text, 0.05, 0.05)
    assert train + valid + test == text
    assert len(valid) == len(test) == int(len(text) * 0.05)


def test_stdlib_corpus_is_the_standard_library_in_a_fixed_order():
    files = stdlib_files()
    assert files == sorted(files) and any(p.name == "functools.py" for p in files)
    assert not any("test" in p.parts for p in files)


def test_folder_corpus_reads_matching_files_in_order(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"second file " * 20)
    (tmp_path / "a.txt").write_bytes(b"first file " * 20)
    (tmp_path / "skip.md").write_bytes(b"not me")
    splits = load_text(str(tmp_path), glob="*.txt", valid_fraction=0.1, test_fraction=0.1)
    whole = splits["all"]
    assert whole.startswith(b"first file") and b"not me" not in whole
    assert "2 files" in splits.source


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.txt", "no such file or folder"),
        (lambda p: (p / "empty.txt").write_bytes(b"") and p / "empty.txt", "empty"),
        (lambda p: p, "no files match"),
    ],
)
def test_bad_corpora_name_the_path_and_the_problem(tmp_path, make, message):
    path = make(tmp_path) or tmp_path / "empty.txt"
    with pytest.raises(UserError, match=message):
        load_text(str(path))


def serve(folder):
    """A loopback HTTP server for `folder`; returns its base URL and a stop function."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server.shutdown


def small_enwik8(folder, size):
    archive = folder / "enwik8.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("enwik8", bytes(np.random.default_rng(0).integers(0, 256, size, np.uint8)))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_enwik8_download_is_verified_cached_and_split(tmp_path, monkeypatch):
    monkeypatch.setattr(text_module, "ENWIK8_SPLIT", (900, 50, 50))
    archive, digest = small_enwik8(tmp_path, 1000)
    url, stop = serve(tmp_path)
    try:
        monkeypatch.setattr(text_module, "ENWIK8_URL", f"{url}/enwik8.zip")
        monkeypatch.setattr(text_module, "ENWIK8_SHA256", digest)
        splits = load_text("enwik8")
        assert (len(splits.train), len(splits.valid), len(splits.test)) == (900, 50, 50)
    finally:
        stop()
    archive.unlink()  # the cached copy is used from now on: no server needed
    assert load_text("enwik8").test == splits.test


def test_enwik8_with_a_wrong_checksum_is_refused_and_not_kept(tmp_path):
    _, digest = small_enwik8(tmp_path, 100)
    url, stop = serve(tmp_path)
    try:
        with pytest.raises(UserError, match="SHA-256"):
            read_enwik8(f"{url}/enwik8.zip", "0" * 64)
    finally:
        stop()
    assert not list((tmp_path / "cache").glob("enwik8*"))


def test_encodings_are_cached_as_memory_maps():
    tokenizer = train_tokenizer("bytes", [])
    first = encode_cached(tokenizer, b"hello world")
    second = encode_cached(tokenizer, b"hello world")
    assert isinstance(second, np.memmap) and bytes(second) == b"hello world"
    assert np.array_equal(first, second)


def test_a_damaged_cache_file_is_encoded_again(tmp_path):
    tokenizer = train_tokenizer("bytes", [])
    encode_cached(tokenizer, b"hello again", tmp_path)
    (cached,) = (tmp_path / "encoded").glob("*.npy")
    cached.write_bytes(b"\x93NUMPY garbage")
    assert bytes(encode_cached(tokenizer, b"hello again", tmp_path)) == b"hello again"
