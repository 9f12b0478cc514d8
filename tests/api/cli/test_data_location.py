"""Where the data lives does not depend on the current directory, is printed by the commands that
touch it, and `leaderboard` / `status` reach a server named by --server or GOLFCHECK_SERVER."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cli import clean_env, run_cli
from tests.support.service import Server

from api.core.settings import Settings, user_data_dir
from tests.support.paths import REPO


def test_default_data_dir_is_the_checkouts_var_from_any_directory(tmp_path: Path) -> None:
    """Run from an unrelated directory with no GOLFCHECK_DATA_DIR: nothing appears there, and the
    command names the checkout's var/ (whether or not a database exists there yet)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = run_cli("leaderboard", env=clean_env(), cwd=elsewhere)
    assert list(elsewhere.iterdir()) == [], "a command created files in the current directory"
    text = out.stdout + out.stderr
    assert str(REPO / "var") in text, text
    if out.returncode == 2:  # no database in the checkout yet: said in words, nothing created
        assert "no golfcheck database" in out.stderr and "--server" in out.stderr
        assert not (REPO / "var" / "golfcheck.db").exists()
    else:
        assert out.returncode == 0, out.stderr


def test_settings_data_dir_is_absolute() -> None:
    s = Settings.from_env({})
    assert s.data_dir == REPO / "var" and s.data_dir_source.startswith("default")
    assert Settings.from_env({"GOLFCHECK_DATA_DIR": "rel"}).data_dir.is_absolute()


def test_user_data_dir_follows_xdg(tmp_path: Path) -> None:
    assert user_data_dir({"HOME": str(tmp_path)}) == tmp_path / ".local" / "share" / "golfcheck"
    assert user_data_dir({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "golfcheck"
    # The XDG spec: a relative XDG_DATA_HOME is invalid and ignored.
    assert user_data_dir({"HOME": str(tmp_path), "XDG_DATA_HOME": "rel"}) == tmp_path / ".local" / "share" / "golfcheck"


def test_local_leaderboard_without_database_refuses_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    out = run_cli("leaderboard", env=clean_env(GOLFCHECK_DATA_DIR=str(empty)), cwd=tmp_path)
    assert out.returncode == 2, out
    assert "no golfcheck database at" in out.stderr and str(empty) in out.stderr
    assert "Traceback" not in out.stderr
    assert not empty.exists()


def test_token_create_names_the_database(server: Server) -> None:
    out = server.cli("token", "create", "--role", "submitter", "--name", "where-test")
    db = Path(server.env["GOLFCHECK_DATA_DIR"]).resolve() / "golfcheck.db"
    assert str(db) in out.stdout.splitlines()[0]


def test_token_made_in_another_directory_works(server: Server, tmp_path: Path) -> None:
    out = run_cli("token", "create", "--role", "submitter", "--name", "roamer", env=server.env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    lst = run_cli("submissions", "--server", server.url, "--token", token, env=server.env, cwd=tmp_path)
    assert lst.returncode == 0, lst.stderr
    assert "no submissions yet" in lst.stdout


def test_leaderboard_over_http_with_flag_and_env(server: Server, published: dict[str, Any], tmp_path: Path) -> None:
    # No database anywhere near: only the server knows the board.
    env = clean_env(GOLFCHECK_DATA_DIR=str(tmp_path / "nothing-here"))
    by_flag = run_cli("leaderboard", "--server", server.url, "--json", env=env, cwd=tmp_path)
    assert by_flag.returncode == 0, by_flag.stderr
    board = json.loads(by_flag.stdout)
    ids = [e["submission_id"] for e in board["verified"]["entries"]]
    assert published["id"] in ids
    by_env = run_cli("leaderboard", env={**env, "GOLFCHECK_SERVER": server.url}, cwd=tmp_path)
    assert by_env.returncode == 0, by_env.stderr
    assert f"server {server.url}" in by_env.stdout
    assert f"{published['measured_val_bpb']:.5f}" in by_env.stdout
    assert not (tmp_path / "nothing-here").exists()


def test_status_uses_golfcheck_server(server: Server, alice: str, published: dict[str, Any], tmp_path: Path) -> None:
    env = clean_env(GOLFCHECK_SERVER=server.url, GOLFCHECK_TOKEN=alice)
    out = run_cli("status", published["id"], env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert published["id"] in out.stdout and "published" in out.stdout


def test_unreachable_server_is_a_message(tmp_path: Path) -> None:
    out = run_cli("leaderboard", "--server", "http://127.0.0.1:9", env=clean_env(), cwd=tmp_path)
    assert out.returncode == 2
    assert "cannot reach the server" in out.stderr and "Traceback" not in out.stderr
