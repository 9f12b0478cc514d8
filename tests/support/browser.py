"""Helpers for the browser tests (importable by test modules, which a conftest is not meant to be)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from tests.support.paths import REPO

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


class ConsoleWatch:
    """Console errors and uncaught exceptions of every page in a browser context."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []  # substrings a test expects (e.g. the 403 of a refused login)

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text} ({page.url})")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e} ({page.url})"))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/ (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Any, base: str, token: str, next_path: str = "/review") -> Any:
    """Sign in through the login form (as a person would) and wait for the redirect."""
    page.goto(f"{base}/review/login?next={next_path}")
    page.get_by_label("Reviewer token").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    return page


# Runs in the page: the markup problems a screen-reader user would hit first.
_A11Y_JS = """() => {
  const out = [];
  if (!document.documentElement.lang) out.push('html without lang');
  const h1 = document.querySelectorAll('h1').length;
  if (h1 !== 1) out.push(`${h1} h1 elements`);
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const labelled = (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label')
      || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!labelled) out.push(`unlabelled ${el.tagName.toLowerCase()} name=${el.name}`);
  }
  for (const svg of document.querySelectorAll('svg[role="img"]')) {
    if (!svg.getAttribute('aria-label') && !svg.getAttribute('aria-labelledby')) out.push('svg image without a name');
  }
  for (const b of document.querySelectorAll('button, a')) {
    if (!b.textContent.trim() && !b.getAttribute('aria-label')) out.push(`${b.tagName.toLowerCase()} without text`);
  }
  for (const t of document.querySelectorAll('table')) {
    if (!t.querySelector('th')) out.push('table without header cells');
  }
  return out;
}"""


def a11y_problems(page: Any) -> list[str]:
    """Missing labels, names and headings on the current page (not a full audit; the basics)."""
    return list(page.evaluate(_A11Y_JS))
