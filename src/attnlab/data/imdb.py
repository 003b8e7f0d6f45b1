"""The IMDb Large Movie Review data set (Maas et al. 2011, "Learning Word Vectors for Sentiment
Analysis"): 25,000 training and 25,000 test reviews, half positive, half negative, the task of
the seed's classifier.

The archive is downloaded once from Stanford, checked against its SHA-256 and unpacked into the
cache. Only the labelled reviews (`aclImdb/{train,test}/{pos,neg}/*.txt`) are unpacked, through
tarfile's "data" filter, which refuses links, devices and any path leading outside the target
folder (on Pythons without extraction filters, the same rule checked by hand: only regular
files with those names). Reviews keep their text as published (including the `<br />` line
breaks).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..errors import UserError
from .download import cache_dir, fetch
from .tables import DEFAULT_VALID_FRACTION, ClassificationData, LabeledTexts, stratified_split

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# As listed for this URL in TensorFlow Datasets (url_checksums/imdb_reviews.txt, 84,125,825 bytes).
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE = "aclImdb_v1.tar.gz"
CLASSES = ["neg", "pos"]
SPLITS = ("train", "test")


def wanted(name: str) -> bool:
    """Whether an archive member is a labelled review."""
    parts = name.split("/")
    return (
        len(parts) == 4
        and parts[0] == "aclImdb"
        and parts[1] in SPLITS
        and parts[2] in CLASSES
        and parts[3].endswith(".txt")
    )


def extract(archive: Path, target: Path) -> Path:
    """Unpack the labelled reviews of `archive` into `target/aclImdb` (once; a half-finished
    extraction is never mistaken for a finished one, since it is renamed into place at the end)."""
    folder = target / "aclImdb"
    if folder.is_dir():
        return folder
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target, prefix=".aclImdb."))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar if wanted(m.name)]
            if hasattr(tarfile, "data_filter"):
                tar.extractall(scratch, members=members, filter="data")
            else:  # Python before 3.10.12 / 3.11.4: the "data" filter's rule for our names
                for member in members:
                    if not member.isfile():
                        raise tarfile.TarError(f"{member.name} is not a regular file")
                tar.extractall(scratch, members=members)  # noqa: S202 (checked above)
        if not (scratch / "aclImdb").is_dir():
            raise UserError(f"{archive}: no aclImdb/train or aclImdb/test reviews inside")
        os.replace(scratch / "aclImdb", folder)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UserError(
            f"{archive}: cannot unpack ({error}); delete it to download again"
        ) from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def read_split(folder: Path, split: str) -> LabeledTexts:
    """Every review of one split, negatives then positives, in file-name order."""
    texts, labels = [], []
    for label in CLASSES:
        files = sorted((folder / split / label).glob("*.txt"))
        texts.extend(f.read_text(encoding="utf-8", errors="replace") for f in files)
        labels.extend([label] * len(files))
    if len(set(labels)) < len(CLASSES):
        raise UserError(
            f"{folder / split}: missing pos/ or neg/ reviews; delete {folder} to unpack again"
        )
    return LabeledTexts(texts, labels, str(folder / split))


def load_imdb(
    valid_fraction: float = DEFAULT_VALID_FRACTION,
    seed: int = 0,
    url: str = IMDB_URL,
    sha256: str = IMDB_SHA256,
    folder: Path | None = None,
) -> ClassificationData:
    """IMDb train (minus a stratified `valid_fraction` held out for validation, chosen by
    `seed`), validation and test; classes "neg" and "pos". Downloads into `folder` (default:
    the attnlab cache) on first use."""
    folder = folder or cache_dir()
    archive = fetch(url, sha256, ARCHIVE, folder)
    reviews = extract(archive, folder / f"imdb-{sha256[:12]}")  # a new archive, a new folder
    train, valid = stratified_split(read_split(reviews, "train"), valid_fraction, seed)
    return ClassificationData(train, valid, read_split(reviews, "test"), list(CLASSES))
