"""Import contracts: the layers of docs/architecture.md, enforced.

- `gepa` (the evaluator and compliance engine) imports nothing of the service (api/, worker/) and no
  web, database, queue or template library, so the verifier runs (and is imported) without them;
- the persistence core `api.core` imports no web framework and nothing above it (the HTTP layer,
  the CLI, the composition root, the worker);
- the worker imports the core and gepa, never the HTTP layer (nor the CLI or `api.main`, which
  pull it in);
- the HTTP layer never imports the worker or the CLI: only `api.main` composes them.

Each contract is checked twice: statically, every import statement of its files (module level
and inside functions, relative ones resolved, `importlib.import_module("constant")` too); and at
run time, importing every module of the layer in a fresh interpreter and looking at what ended
up in sys.modules (which also catches a third-party library pulling a framework in). Each check
is shown to fail on a synthetic violating module through the same functions."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEB = ("fastapi", "starlette", "uvicorn", "httptools", "h11", "jinja2", "python_multipart", "multipart")
ABOVE_CORE = ("api.http", "api.cli", "api.main", "worker")


@dataclass(frozen=True)
class Contract:
    name: str
    layer: str                    # a package, e.g. "api.core"
    forbidden: tuple[str, ...]    # module prefixes: "api.http" forbids api.http and api.http.*

    def files(self, root: Path = REPO) -> list[Path]:
        return sorted((root / self.layer.replace(".", "/")).rglob("*.py"))

    def modules(self, root: Path = REPO) -> list[str]:
        return [module_name(p, root) for p in self.files(root)]


CONTRACTS = (
    Contract("gepa imports nothing of the service", "gepa",
             ("api", "worker", "migrations", *WEB, "sqlalchemy", "alembic", "psycopg", "celery", "kombu", "redis",
              "prometheus_client")),
    Contract("the core imports no web framework and nothing above it", "api.core", (*ABOVE_CORE, *WEB)),
    Contract("the worker never imports the HTTP layer", "worker", ("api.http", "api.cli", "api.main", *WEB)),
    Contract("the HTTP layer never imports the worker or the CLI", "api.http", ("worker", "api.cli", "api.main")),
)


def module_name(path: Path, root: Path = REPO) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def imports_of(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`; `from a import b` yields a and a.b
    (b may be a module), relative imports are resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names if a.name != "*"]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.lineno, node.args[0].value))
    return out


def is_forbidden(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


def static_violations(contract: Contract, root: Path = REPO) -> list[str]:
    return [f"{p.relative_to(root)}:{line}: {name}" for p in contract.files(root)
            for line, name in imports_of(p, root) if is_forbidden(name, contract.forbidden)]


def runtime_violations(contract: Contract, root: Path = REPO) -> list[str]:
    """The forbidden modules in sys.modules after importing every module of the layer afresh."""
    code = ("import importlib, json, sys\n"
            f"for m in {contract.modules(root)!r}:\n"
            "    importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=600,
                         env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": str(root)})
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    return sorted(m for m in loaded if is_forbidden(m, contract.forbidden))


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.layer)
def test_static_import_contract(contract: Contract) -> None:
    bad = static_violations(contract)
    assert not bad, f"{contract.name}:\n" + "\n".join(bad)


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.layer)
def test_import_time_contract(contract: Contract) -> None:
    loaded = runtime_violations(contract)
    assert not loaded, f"{contract.name}: importing {contract.layer} loaded {loaded}"


def _package(root: Path, dotted: str) -> Path:
    """root/a/b/... with an __init__.py at every level; returns the innermost folder."""
    d = root
    for part in dotted.split("."):
        d = d / part
        d.mkdir(exist_ok=True)
        (d / "__init__.py").touch()
    return d


def _violating_tree(root: Path, contract: Contract) -> str:
    """A stand-in of `contract.layer` whose one module imports the first forbidden module (which
    exists in the tree, so importing the layer really loads it) at module level and in a function."""
    target = contract.forbidden[0]
    _package(root, target)
    layer = _package(root, contract.layer)
    (layer / "bad.py").write_text(f"import {target}\n\n\ndef later():\n    from {target} import anything  # noqa\n")
    return target


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.layer)
def test_each_contract_fails_on_a_violation(contract: Contract, tmp_path: Path) -> None:
    """The checks are not vacuous: a module of the layer importing what the contract forbids is
    reported by the static scan (both imports, module level and in a function) and at import time."""
    target = _violating_tree(tmp_path, contract)
    bad = static_violations(contract, tmp_path)
    assert [b.split(": ", 1)[1] for b in bad] == [target, target, f"{target}.anything"], bad
    assert target in runtime_violations(contract, tmp_path)


def test_relative_and_from_imports_are_resolved(tmp_path: Path) -> None:
    """`from .. import http` inside api/core is api.http: the scan cannot be dodged by spelling."""
    core = tmp_path / "api" / "core"
    core.mkdir(parents=True)
    (tmp_path / "api" / "__init__.py").touch()
    (core / "__init__.py").touch()
    (core / "m.py").write_text("from .. import http\nfrom ..http.app import x\nfrom api import main\n")
    names = [name for _, name in imports_of(core / "m.py", tmp_path)]
    assert {"api.http", "api.http.app", "api.main"} <= set(names)
    assert len(static_violations(CONTRACTS[1], tmp_path)) >= 3
