"""A real ``alethia up`` and Debian's Chromium, driven by Playwright, for the Console's tests.

The stack is the e2e tests' (``tests/e2e/conftest.py``: the real supervisor in a temporary
data directory, real Envoy, services, NATS, SeaweedFS and Terraform on the sandbox
templates). The browser is the system's ``chromium`` (``make browser`` installs it), never
one that Playwright downloads. Without it the tests skip, except under ``CI=true``, where a
missing browser is a failure: CI must not pass by testing nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import UpStack, up_stack  # noqa: F401 - the stack fixture

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI=true: the Console's browser tests must run; `make browser` installs it)")
    pytest.skip(what)


def chromium_path() -> str:
    """The system Chromium: ``ALETHIA_CHROMIUM``, else ``chromium`` on PATH."""
    configured = os.environ.get("ALETHIA_CHROMIUM", "")
    if configured:
        if not os.access(configured, os.X_OK):
            _missing(f"ALETHIA_CHROMIUM={configured} is not an executable")
        return configured
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    _missing("no chromium on this machine (`make browser` installs Debian's chromium)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (`make install`)")
    executable = chromium_path()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Console:
    """The Console of one ``alethia up``: its URL, the local admin's token, REST for setup."""

    def __init__(self, stack: UpStack) -> None:
        info = json.loads((stack.data_dir / "stack.json").read_text())
        self.url: str = info["gateway"]
        self.token_file: str = info["gateway_token_file"]
        self.token: str = Path(self.token_file).read_text().strip()

    def rest(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One call to the gateway's REST routes as the local admin (test setup and checks)."""
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def console(up_stack: UpStack) -> Console:  # noqa: F811 - the imported fixture
    return Console(up_stack)


@pytest.fixture(scope="module")
def page(browser: Any, console: Console) -> Iterator[Any]:
    """One laptop-sized tab for the module's tests (they run in order, as one session)."""
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))

    def console_error(msg: Any) -> None:
        # Refusals the scenarios provoke (400, 401, 404, 409, 412 of /api/...) are logged by
        # the browser too; anything else (a blocked script or style, a missing file) is a bug.
        if msg.type != "error":
            return
        if msg.text.startswith("Failed to load resource") and "/api/" in msg.location.get("url", ""):
            return
        errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    tab.on("console", console_error)
    tab.set_default_timeout(30_000)
    yield tab
    context.close()
    assert errors == [], f"errors in the page: {errors}"


def shot(page: Any, name: str) -> None:
    """With ``ALETHIA_CONSOLE_SCREENSHOTS=DIR`` (scripts/console_screenshots.py), save the page as DIR/NAME.png."""
    target = os.environ.get("ALETHIA_CONSOLE_SCREENSHOTS", "")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


# WCAG 2 contrast of every visible element that holds text, against the first opaque
# background behind it (the page's own colours; no blending of translucent layers).
_CONTRAST_JS = """
() => {
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const parse = (c) => { const m = c.match(/[\\d.]+/g).map(Number); return { rgb: m.slice(0, 3), a: m.length > 3 ? m[3] : 1 }; };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.a === 1) return c.rgb;
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest("svg") || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.closest("[disabled]")) continue;
    const fg = parse(style.color);
    const [l1, l2] = [lum(fg.rgb), lum(background(el))].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return bad;
}
"""


def low_contrast(page: Any) -> list[str]:
    """Text on the current page below WCAG AA contrast (4.5:1, 3:1 for large text)."""
    return list(page.evaluate(_CONTRAST_JS))


def unlabelled_inputs(page: Any) -> list[str]:
    """Visible form controls with no accessible name (no <label>, no aria-label)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll("input, select, textarea")]
                .filter((el) => el.getClientRects().length && !el.labels.length
                        && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
                .map((el) => el.name || el.id)"""
        )
    )
