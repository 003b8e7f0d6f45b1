"""Downloading public data sets: verified by SHA-256, cached, never re-fetched once good."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from platformdirs import user_cache_dir

from ..errors import UserError
from ..io import atomic_write
from ..progress import progress

CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where downloads live: $ATTNLAB_CACHE, else the user cache folder."""
    return Path(os.environ.get("ATTNLAB_CACHE") or user_cache_dir("attnlab"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, sha256: str, name: str, folder: Path | None = None) -> Path:
    """Return the path of `name` in the cache, downloading it from `url` first if needed.

    The file is written under a temporary name and renamed only once its SHA-256 matches,
    so an interrupted or corrupted download never poses as a good one.
    """
    folder = folder or cache_dir()
    target = folder / name
    if target.exists():
        if sha256_of(target) == sha256:
            return target
        raise UserError(
            f"{target}: SHA-256 does not match the published one; delete it to download again"
        )
    print(f"downloading {url} -> {target}", flush=True)

    def download(partial: Path) -> None:
        try:
            with open(partial, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                size = int(response.headers.get("Content-Length") or 0) or None
                chunks = iter(lambda: response.read(CHUNK), b"")
                total = -(-size // CHUNK) if size else None
                for chunk in progress(chunks, total, f"downloading {name}", unit="MiB"):
                    out.write(chunk)
        except OSError as error:
            raise UserError(f"could not download {url}: {error}") from error
        got = sha256_of(partial)
        if got != sha256:
            raise UserError(f"{url}: downloaded file has SHA-256 {got}, expected {sha256}")

    return atomic_write(target, download)
