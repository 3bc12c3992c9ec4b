"""The playground page driven in a real headless browser (Debian's chromium through
Playwright) against the real proxy on loopback.

Needs ``apt-get install -y chromium`` and ``pip install playwright`` (never ``playwright
install``: the browser is the system's). Without them the tests skip locally and fail in CI.
``TRUSTPROXY_SCREENSHOTS=docs`` writes the screenshots of docs/playground.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
import pytest

from tests.proxy import ProxyServer
from trustproxy.settings import Client, Settings, hash_key

CHROMIUM = os.environ.get("TRUSTPROXY_CHROMIUM", "/usr/bin/chromium")
TEXT = "I am John Smith, mail john.smith@example.com, card 4111 1111 1111 1111"
PROVIDER = "I am <PERSON_1>, mail <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover
    sync_playwright = None  # type: ignore[assignment]


def _need_browser() -> None:
    missing = "playwright" if sync_playwright is None else ("chromium" if not os.path.exists(CHROMIUM) else None)
    if missing:
        msg = f"{missing} is not installed (apt-get install -y chromium; pip install playwright)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    _need_browser()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyServer]:
    _need_browser()
    with ProxyServer(Settings(audit={"stdout": False, "path": None})) as p:
        yield p


def shot(page: "Page", name: str, tmp_path: Path) -> None:
    where = os.environ.get("TRUSTPROXY_SCREENSHOTS")
    out = Path(where) if where else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"playground-{name}.png"), full_page=True)


def open_page(browser: "Browser", proxy: ProxyServer, width: int = 1280, height: int = 800) -> tuple["Page", list[str]]:
    page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: problems.append("off-origin " + r.url) if not r.url.startswith(proxy.url) else None)
    page.goto(proxy.url + "/playground")
    expect(page.locator("#status")).to_contain_text("Ready")
    return page, problems


def dry_run(page: "Page", text: str, reply: str = "") -> None:
    page.fill("#input", text)
    page.fill("#reply", reply)
    page.click("#run")
    expect(page.locator("#results")).to_be_visible()


def test_placeholders_to_the_provider_values_back_to_the_user(browser: "Browser", proxy: ProxyServer,
                                                               tmp_path: Path) -> None:
    page, problems = open_page(browser, proxy)
    dry_run(page, TEXT, "Thanks <PERSON_1>, I will charge <CREDIT_CARD_1>. Or use 5555 5555 5555 4444.")
    expect(page.locator("#provider")).to_have_text(PROVIDER)
    expect(page.locator("#user")).to_have_text(
        "Thanks John Smith, I will charge 4111 1111 1111 1111. Or use <CREDIT_CARD>.")
    marks = page.locator("#original mark")
    assert marks.count() == 3
    # types as text, not only as colour; score, action and recognizer too
    assert [marks.nth(i).locator(".tag").inner_text().split(" · ")[0] for i in range(3)] == \
        ["PERSON", "EMAIL_ADDRESS", "CREDIT_CARD"]
    assert "EmailRecognizer" in marks.nth(1).inner_text() and "mask" in marks.nth(1).inner_text()
    expect(page.locator("#detections tbody tr")).to_have_count(3)
    notes = page.locator("#reply-notes")
    expect(notes).to_contain_text("Restored: CREDIT_CARD_1, PERSON_1")
    expect(notes).to_contain_text("Output-side PII: CREDIT_CARD redact")
    expect(notes).to_contain_text("Toxicity (")
    expect(notes).to_contain_text("): pass")
    shot(page, "dry-run", tmp_path)
    # the default reply is the echo of what the provider received: every value comes back
    dry_run(page, TEXT)
    expect(page.locator("#user")).to_have_text(TEXT)
    assert problems == []
    page.close()


def test_a_whole_request_body(browser: "Browser", proxy: ProxyServer) -> None:
    page, problems = open_page(browser, proxy)
    body = ('{"model": "echo", "messages": [{"role": "system", "content": "Be brief."},'
            ' {"role": "user", "name": "Maria Garcia", "content": "Mail a.b@example.com"}]}')
    dry_run(page, body)
    expect(page.locator("#original .slot-path")).to_have_count(3)
    expect(page.locator("#provider")).to_contain_text('"content": "Mail <EMAIL_ADDRESS_1>"')
    expect(page.locator("#provider")).to_contain_text('"name": "[PERSON_1]"')
    expect(page.locator("#user")).to_have_text("Mail a.b@example.com")
    assert problems == []
    page.close()


def test_broken_draft_shows_file_line_col(browser: "Browser", proxy: ProxyServer, tmp_path: Path) -> None:
    page, problems = open_page(browser, proxy)
    expect(page.locator("#draft")).to_have_value(re.compile("name: default"))
    draft = page.input_value("#draft")
    page.fill("#draft", draft.replace("{type: EMAIL_ADDRESS, action: mask}", "{type: EMAIL_ADDRESS, action: mask_all}", 1))
    page.click("#check")
    first = page.locator("#draft-out .problem button").first
    line = next(i for i, x in enumerate(draft.splitlines(), 1) if "{type: EMAIL_ADDRESS, action: mask}" in x)
    expect(first).to_contain_text(f"default.yaml:{line}:")
    expect(first).to_contain_text("entities[1].action: 'mask_all' is not one of mask, redact, hash, synthetic, block, allow")
    first.click()  # jumps to the line in the editor
    shot(page, "draft-error", tmp_path)
    assert page.evaluate("document.activeElement.id") == "draft"
    selected = page.evaluate("(() => { const t = document.getElementById('draft'); "
                             "return t.value.slice(t.selectionStart, t.selectionEnd); })()")
    assert "mask_all" in selected
    assert page.evaluate("document.getElementById('draft').scrollTop") > 0  # scrolled to the line
    assert problems == []
    page.close()


def test_golden_tests_and_diff_with_live(browser: "Browser", proxy: ProxyServer, tmp_path: Path) -> None:
    page, problems = open_page(browser, proxy)
    expect(page.locator("#draft")).to_have_value(re.compile("name: default"))
    page.click("#test")
    expect(page.locator("#draft-out")).to_contain_text("0 failing")
    expect(page.locator("#draft-out li.pass").first).to_contain_text("PASS #1")
    shot(page, "golden-tests", tmp_path)
    draft = page.input_value("#draft")
    page.fill("#draft", draft.replace("{type: EMAIL_ADDRESS, action: mask}", "{type: EMAIL_ADDRESS, action: redact}", 1))
    page.click("#test")  # the draft's own example now fails
    expect(page.locator("#draft-out li.fail").first).to_contain_text("FAIL")
    page.fill("#input", TEXT)
    page.click("#diff")
    out = page.locator("#draft-out")
    expect(out).to_contain_text("1 detection change(s) on this input.")
    row = out.locator("table.diff-table").first.locator("tbody tr").first
    expect(row).to_contain_text("action changed")
    expect(row).to_contain_text("EMAIL_ADDRESS")
    expect(row).to_contain_text("mask → redact")
    side = out.locator("table.diff-table").nth(1)
    expect(side).to_contain_text("Provider receives (changed)")
    expect(side).to_contain_text("I am <PERSON_1>, mail <EMAIL_ADDRESS>, card <CREDIT_CARD_1>")
    shot(page, "diff", tmp_path)
    # the live policy is untouched: a dry run still masks the e-mail reversibly
    page.click("#run")
    expect(page.locator("#provider")).to_have_text(PROVIDER)
    # download the draft
    with page.expect_download() as dl:
        page.click("#download")
    d = dl.value
    assert d.suggested_filename == "default.yaml"
    assert Path(d.path()).read_text() == page.input_value("#draft")
    assert problems == []
    page.close()


def test_keyboard_only(browser: "Browser", proxy: ProxyServer) -> None:
    page, problems = open_page(browser, proxy)
    order = []
    for _ in range(5):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert order == ["key", "policy", "input", "reply", "run"]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")  # back in the input box
    page.keyboard.type(TEXT)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#provider")).to_have_text(PROVIDER)
    # pick another policy with the keyboard, run with Enter on the button
    page.focus("#policy")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#draft")).to_have_value(re.compile("name: gdpr"))
    page.focus("#run")
    page.keyboard.press("Enter")
    expect(page.locator("#result-policy")).to_contain_text("gdpr")
    # every control has a visible label
    for cid in ("key", "policy", "input", "reply", "draft"):
        assert page.locator(f"label[for={cid}]").is_visible()
    assert problems == []
    page.close()


def test_narrow_window(browser: "Browser", proxy: ProxyServer, tmp_path: Path) -> None:
    page, problems = open_page(browser, proxy, width=390, height=844)
    dry_run(page, TEXT)
    expect(page.locator("#provider")).to_have_text(PROVIDER)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    boxes = [page.locator(f"#{i}").bounding_box() for i in ("original", "provider", "user")]
    assert all(b is not None for b in boxes)
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]  # type: ignore[index]  # stacked, not squeezed
    shot(page, "narrow", tmp_path)
    assert problems == []
    page.close()


def test_a_key_pasted_in_the_page(browser: "Browser", tmp_path: Path) -> None:
    settings = Settings(audit={"stdout": False, "path": None},
                        clients=[Client(name="officer", key_sha256=hash_key("k-officer"))])
    with ProxyServer(settings) as proxy:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(proxy.url + "/playground")
        expect(page.locator("#status")).to_contain_text("Paste your client key")
        page.fill("#key", "k-officer")
        page.press("#key", "Enter")
        page.locator("#key").blur()
        expect(page.locator("#status")).to_contain_text("Ready")
        dry_run(page, TEXT)
        expect(page.locator("#provider")).to_have_text(PROVIDER)
        # the key lives in memory only: nothing in storage, cookies or the URL
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0
        assert page.context.cookies() == [] and "k-officer" not in page.url
        page.close()


def test_csp_blocks_inline_script(browser: "Browser", proxy: ProxyServer) -> None:
    page, _ = open_page(browser, proxy)
    page.evaluate("(() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';"
                  " document.body.append(s); })()")
    assert page.evaluate("window.pwned === undefined")
    page.close()
