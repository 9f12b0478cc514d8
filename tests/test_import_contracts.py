"""Import contracts: the pure core `gepa` imports nothing of the service (api/, worker/) and no
web, database, queue or template library, so the verifier runs (and is imported) without them.

Checked twice: statically, every import statement in gepa/ (module level and inside functions);
and at run time, importing every gepa module in a fresh interpreter and looking at what ended up
in sys.modules (which also catches a third-party library pulling a web framework in)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GEPA = REPO / "gepa"
FORBIDDEN = ("api", "worker", "migrations", "fastapi", "starlette", "uvicorn", "httptools", "sqlalchemy", "alembic",
             "psycopg", "celery", "kombu", "redis", "jinja2", "python_multipart", "multipart", "prometheus_client")


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.lineno, node.args[0].value))
    return out


def test_gepa_source_imports_nothing_of_the_service() -> None:
    bad = [f"{p.relative_to(REPO)}:{line}: {name}" for p in sorted(GEPA.rglob("*.py"))
           for line, name in imports_of(p) if _top(name) in FORBIDDEN]
    assert not bad, "gepa must not import the service or web/db libraries:\n" + "\n".join(bad)


def test_importing_all_of_gepa_loads_no_service_or_web_module() -> None:
    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                     for p in GEPA.rglob("*.py"))
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not loaded & set(FORBIDDEN), f"importing gepa loaded {sorted(loaded & set(FORBIDDEN))}"


def test_the_contract_checker_sees_a_violation(tmp_path: Path) -> None:
    """The static check is not vacuous: it reports an import of api inside a function."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from api.db import utcnow\n    import sqlalchemy.orm\n")
    assert [name for _, name in imports_of(f) if _top(name) in FORBIDDEN] == ["api.db", "sqlalchemy.orm"]
