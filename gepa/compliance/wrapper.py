"""Decode self-extracting `train_gpt.py` wrappers statically, without executing anything.

Many records ship `exec(lzma.decompress(base64.b85decode(b"...")))` (or base64, raw LZMA2,
zlib, bz2, gzip, brotli when installed) so that the counted code is small. To review the code
that actually runs, the argument of `exec` is evaluated by a tiny interpreter that knows only
literals, `+`, names bound to literals at module level, `.encode`/`.decode`, and the decoding
functions below, each resolved through the file's own import aliases. Anything else makes the
payload opaque; it is never run. Output size is capped to stop decompression bombs.
"""

from __future__ import annotations

import ast
import base64
import bz2
import functools
import lzma
import re
import zlib
from dataclasses import dataclass

import brotli

from gepa.compliance import policy, pysyntax
from gepa.compliance.reach import walk


class Opaque(Exception):
    """The expression cannot be evaluated statically (or is too large, or fails to decode)."""


@dataclass(frozen=True)
class Layer:
    codec: str  # e.g. "base64.b85decode+lzma.decompress"
    line: int  # line of the exec call in the enclosing layer


@dataclass
class Unwrapped:
    source: str  # the innermost code, the one that runs
    layers: list[Layer]
    opaque_line: int | None = None  # an exec whose argument could not be decoded
    opaque_reason: str | None = None
    tree: ast.Module | None = None  # `source` parsed, when that was already done (saves a parse)
    followed: tuple[str, ...] = ()  # bundle files an exec read as its payload (`exec(open(x).read())`)


_LZMA_CONSTS = {n: getattr(lzma, n) for n in dir(lzma) if n.startswith(("FORMAT_", "FILTER_", "PRESET_", "CHECK_", "MF_", "MODE_"))}
_CAP = policy.MAX_DECODED_SOURCE_BYTES


def _limit(data: bytes) -> bytes:
    if len(data) > _CAP:
        raise Opaque(f"decoded payload exceeds {_CAP} bytes")
    return data


def _lzma(data: bytes, format: int = lzma.FORMAT_AUTO, filters=None, memlimit=None) -> bytes:
    try:
        d = lzma.LZMADecompressor(format=format, filters=filters)
        return _limit(d.decompress(data, max_length=_CAP + 1))
    except (lzma.LZMAError, ValueError, TypeError) as exc:
        raise Opaque(f"lzma: {exc}") from None


def _zlib(data: bytes, wbits: int = zlib.MAX_WBITS, bufsize: int = 0) -> bytes:
    try:
        return _limit(zlib.decompressobj(wbits).decompress(data, _CAP + 1))
    except (zlib.error, ValueError) as exc:
        raise Opaque(f"zlib: {exc}") from None


def _gzip(data: bytes) -> bytes:
    return _zlib(data, 31)


def _bz2(data: bytes) -> bytes:
    try:
        return _limit(bz2.BZ2Decompressor().decompress(data, max_length=_CAP + 1))
    except (OSError, ValueError) as exc:
        raise Opaque(f"bz2: {exc}") from None


def _brotli(data: bytes) -> bytes:
    if len(data) > _CAP // 4:
        raise Opaque("brotli payload too large to decode safely")
    try:
        return _limit(brotli.decompress(data))
    except Exception as exc:  # noqa: BLE001 - brotli raises its own error type
        raise Opaque(f"brotli: {exc}") from None


def _b(fn):
    def wrapped(data, *a, **k):
        try:
            return _limit(fn(data, *a, **k))
        except (ValueError, TypeError) as exc:
            raise Opaque(f"{fn.__name__}: {exc}") from None
    return wrapped


_FUNCS = {
    "base64.b85decode": _b(base64.b85decode),
    "base64.b64decode": _b(base64.b64decode),
    "base64.standard_b64decode": _b(base64.standard_b64decode),
    "base64.urlsafe_b64decode": _b(base64.urlsafe_b64decode),
    "base64.a85decode": _b(base64.a85decode),
    "base64.b32decode": _b(base64.b32decode),
    "base64.b16decode": _b(base64.b16decode),
    "lzma.decompress": _lzma,
    "zlib.decompress": _zlib,
    "gzip.decompress": _gzip,
    "bz2.decompress": _bz2,
    "brotli.decompress": _brotli,
}


_READERS = {"read", "read_text", "read_bytes"}


def _sibling_name(node: ast.AST, siblings: dict[str, str]) -> str | None:
    """The bundle file a path expression names: `open("x.py")`, `os.path.join(os.path.dirname(
    __file__), "x.py")`, `Path(__file__).parent / "x.py"`, `Path(__file__).with_name("x.py")`.
    The last string constant in the expression that is a file of the bundle wins."""
    names = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    for name in reversed(names):
        cand = name.lstrip("./")
        for s in siblings:
            if s == cand or s.rsplit("/", 1)[-1] == cand:
                return s
    return None


class _Eval:
    def __init__(self, tree: ast.Module, siblings: dict[str, str] | None = None):
        self.siblings = siblings or {}
        self.followed: list[str] = []  # bundle files read as the exec'd payload
        self.aliases: dict[str, str] = {}
        self.names: dict[str, ast.AST] = {}
        self.codecs: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.names[node.targets[0].id] = node.value

    def dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def ev(self, node: ast.AST, depth: int = 0):
        if depth > 50:
            raise Opaque("expression nested too deeply")
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes, int, float, bool, type(None))):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.ev(self.names.pop(node.id), depth + 1)  # pop: no self-reference loops
            raise Opaque(f"name {node.id!r} is not a module-level literal")
        if isinstance(node, ast.Attribute):
            name = self.dotted(node)
            if name and name.startswith("lzma.") and name[5:] in _LZMA_CONSTS:
                return _LZMA_CONSTS[name[5:]]
            raise Opaque(f"attribute {name or '?'} is not a known constant")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.ev(node.left, depth + 1), self.ev(node.right, depth + 1)
            if type(left) is type(right) and isinstance(left, (str, bytes)):
                return _limit(left + right) if isinstance(left, bytes) else left + right
            raise Opaque("+ of non-string operands")
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.ev(e, depth + 1) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.ev(k, depth + 1): self.ev(v, depth + 1) for k, v in zip(node.keys, node.values) if k is not None}
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise Opaque(f"unsupported expression {type(node).__name__}")

    def call(self, node: ast.Call, depth: int):
        if self.dotted(node.func) == "compile" and node.args:
            # `compile(S, __file__, "exec")`: only the source matters (the file name is cosmetic).
            return self.ev(node.args[0], depth + 1)
        if isinstance(node.func, ast.Attribute) and node.func.attr in _READERS:
            args: list = []
            kwargs: dict = {}
        else:
            args = [self.ev(a, depth + 1) for a in node.args]
            kwargs = {k.arg: self.ev(k.value, depth + 1) for k in node.keywords if k.arg}
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _READERS:
            # `open(sibling).read()` / `Path(...).read_text()`: the payload is another shipped file.
            name = _sibling_name(func.value, self.siblings)
            if name is None:
                raise Opaque("exec of a file that is not part of the submission")
            self.followed.append(name)
            self.codecs.append(f"file:{name}")
            text = self.siblings[name]
            return text.encode("utf-8") if func.attr == "read_bytes" else text
        if isinstance(func, ast.Attribute) and func.attr in ("decode", "encode"):
            target = self.ev(func.value, depth + 1)
            enc = args[0] if args else kwargs.get("encoding", "utf-8")
            try:
                if func.attr == "decode" and isinstance(target, bytes):
                    return target.decode(enc, *args[1:2])
                if func.attr == "encode" and isinstance(target, str):
                    return target.encode(enc, *args[1:2])
            except (LookupError, UnicodeError) as exc:
                raise Opaque(f"{func.attr}: {exc}") from None
            raise Opaque(f".{func.attr} on the wrong type")
        name = self.dotted(func)
        if name in _FUNCS:
            if not args or not isinstance(args[0], (bytes, str)):
                raise Opaque(f"{name} without a literal payload")
            data = args[0].encode("latin-1") if isinstance(args[0], str) and not name.startswith("base64") else args[0]
            self.codecs.append(name)
            return _FUNCS[name](data, *args[1:], **kwargs)
        if name == "compile" and args:
            return args[0]
        if name == "bytes" and args and isinstance(args[0], (bytes, str)):
            return args[0] if isinstance(args[0], bytes) else args[0].encode(*(args[1:2] or ["utf-8"]))
        if name == "str" and len(args) >= 2 and isinstance(args[0], bytes):
            return args[0].decode(args[1])
        raise Opaque(f"call to {name or 'an expression'} is not a known decoder")


_EXEC_TEXT = re.compile(r"\b(exec|eval)\s*\(")


def _exec_calls(tree: ast.Module, text: str | None = None) -> list[ast.Call]:
    if text is not None and not _EXEC_TEXT.search(text):
        return []  # no call can exist without the word in the source
    calls = []
    for node in walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval"):
            calls.append(node)
    return calls


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    raise Opaque("payload is not text")


def unwrap(source: str, siblings: dict[str, str] | None = None) -> Unwrapped:
    """See `_unwrap`; the last few results are kept so that collecting a folder's sources and
    reviewing them parse each file once. `siblings` (file name -> text) are the other files of
    the submission, which a stub may `exec(open(...).read())`."""
    return _unwrap_cached(source, tuple(sorted((siblings or {}).items())))


@functools.lru_cache(maxsize=8)
def _unwrap_cached(source: str, siblings: tuple = ()) -> Unwrapped:
    return _unwrap(source, dict(siblings))


def _unwrap(source: str, siblings: dict[str, str] | None = None) -> Unwrapped:
    """Peel wrapper layers off `source`; a file that is not a wrapper comes back unchanged.

    A module counts as a wrapper when it is small in statements and an `exec` decodes to
    Python source; large ordinary scripts that happen to call `exec` are left alone (the
    opaque call is still reported so a reviewer can look).
    """
    layers: list[Layer] = []
    followed: list[str] = []
    current = source
    tree = None
    for _ in range(policy.MAX_WRAPPER_DEPTH):
        try:
            tree = pysyntax.parse(current)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
            break
        calls = _exec_calls(tree, current)
        if not calls:
            break
        decoded = None
        for call in calls:
            if not call.args:
                continue
            ev = _Eval(tree, siblings)
            try:
                value = _as_text(ev.ev(call.args[0]))
                pysyntax.parse(value)  # must be Python to count as the wrapped program
            except (Opaque, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                if len(tree.body) <= 12:  # a wrapper we failed to open: say so
                    return Unwrapped(current, layers, opaque_line=call.lineno, opaque_reason=str(exc))
                continue
            decoded = (value, Layer("+".join(ev.codecs) or "literal", call.lineno))
            followed += ev.followed
            break
        if decoded is None:
            break
        current = decoded[0]
        tree = None
        layers.append(decoded[1])
    return Unwrapped(current, layers, tree=tree, followed=tuple(followed))
