"""The attention page's targets: a GPT-2-sized model (12 layers × 12 heads, width 768, vocabulary
50,257, randomly initialised with `transformers`) saved as an HF folder, converted with
`attnlab convert`, looked at on a 128-token text with `attnlab look`; the page's size, and how
long headless Chromium takes to open it (navigation start to the end of the page's script).

    python -m benchmarks.look_page [--out benchmarks/results] [--opens 5] [--readme RUN]

Writes look_page.json into --out; with --readme RUN, also look_readme.png: the page of a trained
run with one head opened and a token hovered, for the README.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from attnlab.data.tokenizers import train_tokenizer
from benchmarks.common import attnlab
from tests.look_runs import CHROMIUM, CHROMIUM_FLAGS

TOKENS = 128


def gpt2_folder(folder: Path, text: str) -> None:
    """A randomly initialised GPT-2 small and a byte-level BPE tokenizer, as save_pretrained
    writes them (the tokenizer's vocabulary is smaller than GPT-2's: the model has 50,257)."""
    import transformers

    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(str(folder))
    tokenizer = train_tokenizer("bpe", [text], 2000)
    transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer.hf).save_pretrained(str(folder))


def text_of(tokens: int, folder: Path, corpus: str) -> str:
    """A text the run's tokenizer splits into exactly `tokens` tokens."""
    from attnlab.runs import RunFolder

    tokenizer = RunFolder(folder).tokenizer()
    text = tokenizer.decode(tokenizer.encode(corpus)[:tokens])
    assert len(tokenizer.encode(text)) == tokens
    return text


def open_page(page: Path, opens: int) -> dict:
    from playwright.sync_api import sync_playwright

    loads, ready = [], []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        for n in range(opens + 1):  # the first open warms the browser up and is not counted
            tab = browser.new_page()
            started = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_selector("body[data-ready='1']")
            seconds = time.perf_counter() - started
            if n:
                loads.append(seconds)
                ready.append(tab.evaluate("window.attnlabReady") / 1000)
            tab.close()
        browser.close()
    medians = {"open_median": statistics.median(loads), "ready_median": statistics.median(ready)}
    return {"open_seconds": loads, "ready_seconds": ready, **medians}


def readme_screenshot(run: Path, path: Path) -> None:
    """The page of `run` on a line of Python, its last layer's first head opened, a token
    hovered: what the README shows."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        page = Path(work) / "page.html"
        attnlab("look", run, "--text", README_TEXT, "--out", page)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            tab = browser.new_page(viewport={"width": 1100, "height": 760})
            tab.goto(page.as_uri())
            tab.click("canvas.thumb.head[data-layer='3'][data-head='0']")
            tab.evaluate("document.getElementById('views').scrollIntoView()")
            tab.hover("#left .token >> nth=12")
            shot = Image.open(io.BytesIO(tab.screenshot()))
            browser.close()
    # A palette of 128 colours keeps the README's image small.
    shot.convert("RGB").quantize(128).save(path, optimize=True)


README_TEXT = "def add(self, item):\n        self.items.append(item)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--readme", type=Path, help="a trained run for the README's screenshot")
    args = parser.parse_args()
    corpus = Path("README.md").read_text() * 3
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        started = time.perf_counter()
        gpt2_folder(work / "hf", corpus)
        made = time.perf_counter() - started
        _, convert_seconds = attnlab("convert", "--from-hf", work / "hf", "--out", work / "run")
        text = text_of(TOKENS, work / "run", corpus)
        page = work / "page.html"
        _, look_seconds = attnlab("look", work / "run", "--text", text, "--out", page)
        result = {
            "model": "GPT-2 small shape, random weights: 12 layers, 12 heads, width 768",
            "tokens": TOKENS,
            "hf_folder_seconds": made,
            "convert_seconds": convert_seconds,
            "look_seconds": look_seconds,
            "page_bytes": page.stat().st_size,
            "threads": torch.get_num_threads(),
            **open_page(page, args.opens),
        }
    if args.readme:
        readme_screenshot(args.readme, args.out / "look_readme.png")
    (args.out / "look_page.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
