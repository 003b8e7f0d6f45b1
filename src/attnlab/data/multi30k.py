"""Multi30k (Elliott et al. 2016, "Multi30K: Multilingual English-German Image Descriptions"),
task 1: image captions translated between German and English, 29,000 training, 1,014
validation and 1,000 test (test_2016_flickr) sentence pairs, the usual small benchmark for
the Transformer.

The six gzipped text files (one sentence per line, the two languages line by line) are
downloaded once from the dataset's own repository at a fixed commit, checked against their
SHA-256 and cached. The digests were computed from the files of that commit.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from ..errors import UserError
from .download import cache_dir, fetch
from .pairs import Pairs, group

COMMIT = "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
MULTI30K_URL = f"https://raw.githubusercontent.com/multi30k/dataset/{COMMIT}/data/task1/raw/"
MULTI30K_SHA256 = {
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
}
SPLIT_FILES = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
LANGUAGES = ("de", "en")


def read_lines(path: Path) -> list[str]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read ({error}); delete it to download again") from error


def parse_direction(direction: str) -> tuple[str, str]:
    """'de-en' -> ("de", "en"): source and target language."""
    parts = tuple(direction.split("-"))
    if len(parts) != 2 or parts[0] == parts[1] or not set(parts) <= set(LANGUAGES):
        raise UserError(f"--data multi30k:{direction}: the directions are de-en and en-de")
    return parts[0], parts[1]


def load_multi30k(
    direction: str = "de-en",
    url: str = MULTI30K_URL,
    sha256: dict[str, str] | None = None,
    folder: Path | None = None,
) -> dict[str, Pairs]:
    """Train, valid and test pairs in `direction` ("de-en" or "en-de"), downloaded into
    `folder` (default: the attnlab cache) on first use."""
    source, target = parse_direction(direction)
    sha256 = sha256 or MULTI30K_SHA256
    folder = (folder or cache_dir()) / "multi30k"
    splits = {}
    for split, stem in SPLIT_FILES.items():
        sides = {}
        for language in LANGUAGES:
            name = f"{stem}.{language}.gz"
            sides[language] = read_lines(fetch(url + name, sha256[name], name, folder))
        if len(sides["de"]) != len(sides["en"]):
            raise UserError(f"multi30k {split}: {len(sides['de'])} German but "
                            f"{len(sides['en'])} English lines")  # fmt: skip
        pairs = zip(sides[source], sides[target], strict=True)
        rows = [(n, s, t) for n, (s, t) in enumerate(pairs, 1) if s.strip() and t.strip()]
        splits[split] = group(rows, f"multi30k {direction} [{split}]")
    return splits
