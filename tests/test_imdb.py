import hashlib
import io
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from attnlab.data.imdb import ARCHIVE, IMDB_SHA256, IMDB_URL, load_imdb
from attnlab.errors import UserError

REVIEWS = {
    (split, label): [f"{split} {label} review {i}" for i in range(10)]
    for split in ("train", "test")
    for label in ("pos", "neg")
}


def build_archive(path, extra=()):
    """A small aclImdb_v1.tar.gz in the published layout, plus the unlabelled files the real
    archive holds next to the reviews, plus any `extra` (name, bytes) members."""
    members = [("aclImdb/README", b"readme"), ("aclImdb/train/unsup/0_0.txt", b"unlabelled")]
    for (split, label), texts in REVIEWS.items():
        for i, text in enumerate(texts):
            members.append(
                (f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt", text.encode())
            )
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [*members, *extra]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www over HTTP on the loopback interface."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/{ARCHIVE}"
    httpd.shutdown()
    httpd.server_close()


def test_official_source_is_the_default():
    assert IMDB_URL == "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    assert len(IMDB_SHA256) == 64


def test_download_extract_and_split(tmp_path, server):
    root, url = server
    sha = build_archive(root / ARCHIVE)
    cache = tmp_path / "cache"
    data = load_imdb(valid_fraction=0.2, seed=0, url=url, sha256=sha, folder=cache)
    assert data.classes == ["neg", "pos"]
    assert (len(data.train), len(data.valid), len(data.test)) == (16, 4, 20)
    assert sorted(data.valid.labels) == ["neg", "neg", "pos", "pos"]
    everything = data.train.texts + data.valid.texts
    assert sorted(everything) == sorted(REVIEWS["train", "pos"] + REVIEWS["train", "neg"])
    for text, label in zip(data.test.texts, data.test.labels, strict=True):
        assert text.startswith(f"test {label} ")
    assert not list(cache.rglob("unsup")) and not list(cache.rglob("README"))

    (root / ARCHIVE).unlink()  # a second load uses the cache alone
    again = load_imdb(valid_fraction=0.2, seed=0, url=url, sha256=sha, folder=cache)
    assert again.valid.texts == data.valid.texts


def test_wrong_checksum_is_refused_and_nothing_kept(tmp_path, server):
    root, url = server
    build_archive(root / ARCHIVE)
    with pytest.raises(UserError, match="SHA-256"):
        load_imdb(url=url, sha256="0" * 64, folder=tmp_path / "cache")
    assert not (tmp_path / "cache" / ARCHIVE).exists()


@pytest.mark.parametrize(
    "name", ["aclImdb/train/pos/../../../../escaped.txt", "/tmp/aclImdb/train/pos/escaped.txt"]
)
def test_members_outside_the_review_folders_are_skipped(tmp_path, server, name):
    root, url = server
    sha = build_archive(root / ARCHIVE, extra=[(name, b"evil")])
    data = load_imdb(url=url, sha256=sha, folder=tmp_path / "deep" / "cache")
    assert len(data.train) + len(data.valid) == 20 and "evil" not in data.train.texts
    assert not list(tmp_path.rglob("escaped.txt")) and not list((tmp_path / "deep").rglob("evil*"))


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../etc/passwd"])
def test_links_out_of_the_cache_are_refused(tmp_path, server, target):
    root, url = server
    link = tarfile.TarInfo("aclImdb/train/pos/99_9.txt")
    link.type, link.linkname = tarfile.SYMTYPE, target
    members = [("aclImdb/README", b"readme")]
    with tarfile.open(root / ARCHIVE, "w:gz") as tar:
        tar.addfile(link)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    sha = hashlib.sha256((root / ARCHIVE).read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match=r"aclImdb_v1\.tar\.gz: cannot unpack"):
        load_imdb(url=url, sha256=sha, folder=cache)
    assert not list(cache.rglob("99_9.txt")) and not list(cache.rglob("aclImdb"))
