"""Isolation: submitted code is never imported or executed; the eval worker has no network in the
production stack; every input has a size limit.

- End to end: a training script whose every line would leave a trace if Python ran or imported
  it goes through upload, checks, evaluation and publication; no trace appears.
- Statically: no module of the service (api/, worker/) contains a way to run code it did not ship
  (exec/eval/compile, runpy, import by computed name, subprocess, pickle/torch.load outside the
  safe reader).
- docker-compose.yml: the eval worker only on the internal network, no ports, and every golfcheck
  container without capabilities, privilege escalation or a writable root file system.
- Limits: one request per input over its limit, each refused with 413/422 (the hostile corpus
  covers the large files, archives and JSON).
"""

from __future__ import annotations

import ast
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.hardening import PROBLEM, HServer, files_for
from tests.support.service import wait_final
from tests.support.paths import REPO
import socket

TRACE = Path(f"/tmp/golfcheck-executed-{uuid.uuid4().hex[:10]}")


def test_submitted_code_is_never_run(corpus_server: HServer, tiny: dict[str, Any]) -> None:
    code = (f"open({str(TRACE)!r}, 'w').write('imported')\n"
            f"import os; os.system('touch {TRACE}-system')\n"
            f"if __name__ == '__main__':\n    open({str(TRACE)!r} + '-main', 'w')\n").encode()
    with corpus_server.server.client(corpus_server.server.token("submitter", "iso")) as c:
        resp = c.post("/api/v1/submissions", files=files_for(tiny, code=code))
        assert resp.status_code == 202, resp.text
        final = wait_final(c, resp.json()["id"], timeout=300)
    # It was read (reviewed statically) and the artifact evaluated, all the way to the board.
    assert final["state"] == "published", final["verdict"]
    rules = {r["rule"]: r["status"] for r in final["verdict"]["rules"]}
    assert rules["code.parse"] == "pass" and len(rules) > 3
    assert not list(TRACE.parent.glob(TRACE.name + "*"))


# Calls that run code the service did not ship, or load pickles outside gepa.codec's safe reader.
FORBIDDEN_CALLS = {"exec", "eval", "compile", "__import__", "execfile", "run_path", "run_module", "import_module",
                   "system", "popen", "Popen", "call", "check_call", "check_output", "spawn", "execv", "execve",
                   "load", "loads"}
# Where such a call is expected, and why.
ALLOWED = {
    ("api/http/admission.py", "import_module"): "imports the config modules of the packages inside gepa/families",
}


def _calls(path: Path) -> list[tuple[str, int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if name in FORBIDDEN_CALLS and owner not in ("json", "gcfg", "yaml"):
                first = node.args[0] if node.args else None
                constant = isinstance(first, ast.Constant)
                found.append((name, node.lineno, owner if not constant else f"{owner}(constant)"))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                mod = (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
                if mod.split(".")[0] in ("subprocess", "runpy", "pickle", "marshal", "shelve", "dill"):
                    found.append((f"import {mod}", node.lineno, ""))
    return found


def test_service_code_has_no_way_to_run_submitted_code() -> None:
    offenders = []
    for path in sorted((REPO / "api").rglob("*.py")) + sorted((REPO / "worker").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        for name, line, owner in _calls(path):
            if (rel, name) in ALLOWED:
                continue
            offenders.append(f"{rel}:{line} {owner}.{name}".replace(" .", " "))
    assert not offenders, "service code that could run something it did not ship:\n" + "\n".join(offenders)


def test_the_scan_sees_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import subprocess\nexec(code)\nimportlib.import_module(name)\ntorch.load(path)\n")
    assert sorted(n for n, _, _ in _calls(bad)) == sorted(["import subprocess", "exec", "import_module", "load"])


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # Resolved by docker-compose itself (anchors and merges applied), as Docker would run it.
    out = subprocess.run(["docker-compose", "-f", str(REPO / "docker-compose.yml"), "config"], capture_output=True,
                         text=True, timeout=60, check=True, cwd=REPO)
    return yaml.safe_load(out.stdout)  # type: ignore[no-any-return]


def test_eval_worker_has_no_network_route_out(compose: dict[str, Any]) -> None:
    ev = compose["services"]["worker-eval"]
    nets = set(ev["networks"])
    assert nets and all(compose["networks"][n].get("internal") is True for n in nets)
    assert not ev.get("ports") and ev.get("network_mode") in (None, "")
    # The only way out of the internal network is through a service on both networks: the API,
    # which does not forward anything.
    assert set(compose["services"]["api"]["networks"]) == {"backend", "frontend"}


@pytest.mark.parametrize("service", ["api", "worker-checks", "worker-eval", "migrate"])
def test_containers_are_locked_down(compose: dict[str, Any], service: str) -> None:
    s = compose["services"][service]
    assert s["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in s["security_opt"]
    assert s["read_only"] is True and any(str(t).startswith("/tmp") for t in s["tmpfs"])
    assert s["pids_limit"] > 0
    assert not s.get("privileged")


LIMIT_CASES = [
    ("track over 100 characters", {"files": {"track": (None, "t" * 101)}}, 422, "invalid-field"),
    ("text field over 1 MB", {"files": {"submission_json": (None, "x" * 1_100_000)}}, 413, "payload-too-large"),
    # A declared body over the request limit: tests/e2e/test_embedded.py's declared-oversize test.
    ("query limit over 500", {"method": "GET", "url": "/api/v1/submissions?limit=501"}, 422, "validation-error"),
    ("submission id over 36 characters", {"method": "GET", "url": "/api/v1/submissions/" + "a" * 40}, 404, "not-found"),
    ("token over 200 characters", {"method": "GET", "url": "/api/v1/quota", "token": "gc_" + "a" * 300}, 401,
     "invalid-token"),
]


@pytest.mark.parametrize("what,request_kw,status,kind", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_every_input_has_a_limit(limits_server: HServer, what: str, request_kw: dict[str, Any], status: int,
                                 kind: str) -> None:
    kw = dict(request_kw)
    token = kw.pop("token", None) or limits_server.server.token("submitter", f"lim-{uuid.uuid4().hex[:6]}")
    method, url = kw.pop("method", "POST"), kw.pop("url", "/api/v1/submissions")
    with limits_server.server.client(token) as c:
        resp = c.request(method, url, **kw)
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith(PROBLEM) and resp.json()["kind"] == kind


def test_oversized_headers_are_refused(limits_server: HServer) -> None:
    """The HTTP server bounds an incomplete request head (api/http/httpserver.py: 64 KiB, or h11's own
    16 KiB): 1 MB of header trickled in is answered 4xx and the connection closed, not buffered."""
    host, port = limits_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        reply = b""
        try:
            for _ in range(16):  # 1 MB in 64 kB pieces; the server answers and closes early
                s.sendall(b"a" * 65536)
        except OSError:
            pass
        try:
            reply = s.recv(100)
        except ConnectionResetError:  # closed with our bytes unread: refused all the same
            reply = b""
    # A closed connection (b"") or a 4xx; never a wait for more (recv would time out: OSError).
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply
