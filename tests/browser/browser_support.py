"""Helpers for the browser tests (importable by test modules, which a conftest is not meant to be)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
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
