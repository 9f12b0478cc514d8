"""The static code review through the real service: `golfcheck serve` (embedded worker) over HTTP.

Two bypasses that once published `pass`:
- a train_gpt.py whose `# -*- coding: utf-7 -*-` cookie turns a comment line into
  `import requests; requests.get(...)` when CPython reads it;
- a bundle whose train_gpt.py imports a sibling helper.py that makes the network call (the
  helper was neither reviewed nor counted in the code bytes).
Both must come back rejected, with the rule and the file that caught them, and the helper's bytes
counted.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any, Iterator

import pytest

from tests.support.embedded import embedded_server
from tests.support.service import TINY_CONFIG, Server, wait_final

UTF7_SCRIPT = (b"# -*- coding: utf-7 -*-\n"
               b"print('training')\n"
               b"# a comment +AAo-import requests+ADs- requests.get(+ACI-https://example.com/x+ACI-)\n")
MAIN = b"import helper\n\nif __name__ == '__main__':\n    helper.fetch()\n"
HELPER = (b"import urllib.request\n\n\ndef fetch():\n"
          b"    return urllib.request.urlopen('https://example.com/weights.bin').read()\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from embedded_server(tmp_path_factory, "code-review")


@pytest.fixture(scope="module")
def alice(server: Server) -> str:
    return server.token("submitter", "alice")


def _rules(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in body["verdict"]["rules"]}


def test_utf7_cookie_hiding_a_download_is_rejected(server: Server, alice: str, tiny: dict[str, Any]) -> None:
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", files={
            "artifact": ("final_model.int6.ptz", tiny["artifact"].read_bytes()),
            "code": ("train_gpt.py", UTF7_SCRIPT),
            "config": ("eval.json", json.dumps(TINY_CONFIG).encode())})
        assert resp.status_code == 202, resp.text
        body = wait_final(c, resp.json()["id"])
    assert body["state"] == "rejected", body["state"]
    rules = _rules(body)
    assert rules["code.encoding"]["status"] == "fail"
    assert rules["code.network"]["status"] == "fail"
    assert rules["code.network"]["evidence"][0]["line"] == 4  # the line the UTF-7 text put the import on


def test_bundle_helper_module_with_a_network_call_is_rejected_and_counted(
        server: Server, alice: str, tiny: dict[str, Any]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("final_model.int6.ptz", tiny["artifact"].read_bytes()),
                           ("train_gpt.py", MAIN),
                           ("helper.py", HELPER),
                           ("eval.json", json.dumps(TINY_CONFIG).encode()),
                           ("submission.json", json.dumps({"name": "Helper", "author": "A", "val_bpb": 4.0}).encode())):
            info = tarfile.TarInfo(f"2026-05-03_Helper/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with server.client(alice) as c:
        resp = c.post("/api/v1/submissions", files={"bundle": ("b.tar.gz", buf.getvalue(), "application/gzip")})
        assert resp.status_code == 202, resp.text
        body = wait_final(c, resp.json()["id"])
    assert body["state"] == "rejected", body["state"]
    net = _rules(body)["code.network"]
    assert net["status"] == "fail"
    assert {e["file"] for e in net["evidence"]} == {"helper.py"}
    assert body["sizes"]["code_bytes"] == len(MAIN) + len(HELPER)
