"""The attention page in a real browser: Debian's headless chromium, driven by Playwright.

In CI a browser that cannot start fails these tests (`look_runs.require_chromium`); nothing
here is skipped there.
"""

from __future__ import annotations

import io
import tempfile

import pytest
import torch

import attnlab
from attnlab.cli import main
from tests.look_runs import CHROMIUM_FLAGS, TEXT, make_run, require, require_chromium, tiny_config

LAYERS, HEADS = 2, 3


@pytest.fixture(scope="module")
def browser():
    executable = require_chromium()
    playwright = require("playwright.sync_api")
    with playwright.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900},
        )  # fmt: skip
        yield context
        context.close()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("look")
    torch.manual_seed(0)
    lm = attnlab.LanguageModel(tiny_config(depth=LAYERS, heads=HEADS, context=64))
    run = make_run(folder / "run", lm)
    assert main(["look", run, "--text", TEXT, "--out", str(folder / "page.html")]) == 0
    return folder / "page.html"


@pytest.fixture(scope="module")
def opened(browser, page_file):
    """The page, loaded, with every request and console message it made."""
    page = browser.new_page()
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(page_file.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    yield page, requests, problems
    page.close()


def test_one_panel_per_layer_and_head(opened):
    page, _, _ = opened
    assert page.locator("canvas.thumb.head").count() == LAYERS * HEADS
    assert page.locator("canvas.thumb.average").count() == LAYERS
    assert page.locator("canvas.thumb.rollout").count() == LAYERS


def test_the_tokens_are_all_there(opened):
    page, _, _ = opened
    count = len(TEXT.encode())  # bytes tokenizer: a token per byte
    assert page.locator("#tokens .token").count() == count
    assert page.inner_text("#token-count") == f"{count} tokens"


def test_clicking_a_thumbnail_opens_its_head(opened):
    page, _, _ = opened
    assert page.locator("#detail").is_hidden()
    page.click("canvas.thumb.head[data-layer='1'][data-head='2']")
    assert page.locator("#detail").is_visible()
    assert page.inner_text("#detail-title") == "layer 2, head 3"
    assert page.locator("#left .token").count() == len(TEXT.encode())


def linked(page) -> list[str]:
    return page.eval_on_selector_all(
        "#right .token", "els => els.map(e => e.classList.contains('linked') ? '1' : '0')"
    )


def test_hovering_a_token_changes_the_highlighted_lines(opened):
    page, _, _ = opened
    page.click("canvas.thumb.head[data-layer='0'][data-head='0']")
    canvas = "document.getElementById('lines').toDataURL()"
    page.hover("#left .token >> nth=1")
    first, first_lines = linked(page), page.evaluate(canvas)
    assert page.get_attribute("#lines", "data-highlight") == "query:1"
    page.hover("#left .token >> nth=20")
    second, second_lines = linked(page), page.evaluate(canvas)
    assert first.count("1") >= 1 and second.count("1") >= 1
    assert first != second and first_lines != second_lines
    # a causal model: token 1 reads only tokens 0 and 1
    assert set(i for i, v in enumerate(first) if v == "1") <= {0, 1}


def test_no_network_and_no_console_error(opened):
    page, requests, problems = opened
    page.click("#views button[data-view='rollout']")
    page.click("canvas.thumb.rollout >> nth=1")
    assert requests == [page.url]
    assert problems == []


def test_a_screenshot_is_not_blank(opened):
    page, _, _ = opened
    image = require("PIL.Image")
    shot = image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    colours = shot.getcolors(maxcolors=1 << 20)
    white = sum(n for n, c in colours if c == (255, 255, 255))
    assert len(colours) > 50
    assert white < 0.95 * shot.width * shot.height


def test_an_encoder_decoder_page_shows_each_attention_and_its_alignment(browser, tmp_path):
    """Three groups of maps, the cross-attention (target × source) first; a click on another
    group's button shows that one."""
    torch.manual_seed(0)
    model = attnlab.Seq2Seq(tiny_config(vocab_size=258, depth=LAYERS, heads=HEADS))
    run, out = make_run(tmp_path / "run", model), tmp_path / "page.html"
    args = ["look", run, "--text", "abcdef", "--target", "fed", "--out", str(out)]
    assert main(args) == 0
    page, problems = browser.new_page(), []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    assert page.locator("#groups button").all_inner_texts() == [
        "cross-attention (alignment)", "encoder self-attention", "decoder self-attention"
    ]  # fmt: skip
    assert page.locator("canvas.thumb.head").count() == LAYERS * HEADS
    page.click("canvas.thumb.head[data-layer='1'][data-head='0']")
    assert page.locator("#left .token").count() == 4  # f e d ⟨eos⟩
    assert page.locator("#right .token").count() == 7  # a b c d e f ⟨eos⟩
    page.hover("#left .token >> nth=0")
    assert linked(page).count("1") >= 1
    page.click("#groups button >> nth=1")
    page.wait_for_selector("#groups button.active[data-group='encoder']", timeout=10_000)
    page.click("canvas.thumb.head >> nth=0")
    assert page.locator("#left .token").count() == 7
    assert problems == []
    page.close()
