"""Parse submitted Python written for a newer interpreter than the one running the review.

The challenge ran on Python 3.12 images, and real records use PEP 701 f-strings, which may reuse
the outer quote inside a replacement field (`f"{", ".join(names)}"`, `f"{x if c else"y"}"`),
put backslashes or comments there, and nest without limit. Python 3.11's parser rejects them.

`parse` first tries the running parser. On a syntax error it parses the source with libcst's
native parser, which implements the 3.12 grammar (a real tokenizer, not a pattern), and rewrites
only the f-strings: every string literal inside a replacement field is replaced by a unique
placeholder name and each f-string gets a delimiter that its enclosing f-strings do not use.
That text is 3.11 syntax; after `ast.parse` the placeholders are swapped back for the literal
values (read with `ast.literal_eval`, which evaluates nothing but literals), so the tree is the
one Python 3.12 would build. Line numbers are kept; columns on rewritten lines may shift.
Nothing is ever executed.
"""

from __future__ import annotations

import ast
import functools
import importlib
import itertools

cst = None  # libcst, imported on first need (it costs ~0.5 s at start-up and most files never need it)


@functools.lru_cache(maxsize=1)
def _libcst():
    global cst
    cst = importlib.import_module("libcst")  # libcst ships the 3.12 grammar (a declared dependency)
    return _classes(cst)

_QUOTES = ('"', "'", '"""', "'''")


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    try:
        return ast.parse(source, filename=filename)
    except SyntaxError as first:
        if "f" not in source and "F" not in source:
            raise
        try:
            fixed, literals = downgrade_fstrings(source)
        except (_Unparsable, RecursionError):
            raise first from None
        if not literals and fixed == source:
            raise
        try:
            tree = ast.parse(fixed, filename=filename)
        except SyntaxError:
            raise first from None
        if literals:
            tree = _Restore(literals).visit(tree)
        return tree


class _Unparsable(Exception):
    pass


# The same payload is parsed by the unwrapper and again by the review: rewrite it once.
@functools.lru_cache(maxsize=8)
def downgrade_fstrings(source: str) -> tuple[str, dict[str, object]]:
    """Rewrite PEP 701 f-strings into 3.11 syntax; returns (text, placeholder -> literal value)."""
    top = _libcst()
    if top is None:
        raise _Unparsable("libcst is not installed")
    try:
        module = cst.parse_module(source, config=cst.PartialParserConfig(python_version="3.12"))
    except Exception as exc:  # noqa: BLE001 - libcst raises ParserSyntaxError and native errors
        raise _Unparsable(str(exc)) from None
    taken = source
    counter = itertools.count()
    literals: dict[str, object] = {}

    def placeholder(value: object) -> str:
        while True:
            name = f"__gc_lit_{next(counter)}__"
            if name not in taken:
                literals[name] = value
                return name

    try:
        new = module.visit(top(module, placeholder))
    except cst.CSTValidationError as exc:
        raise _Unparsable(str(exc)) from None
    return new.code, literals


def _literal(module, node) -> object:
    try:
        return ast.literal_eval(module.code_for_node(node).strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise _Unparsable(f"string literal: {exc}") from None


def _classes(cst):
    """The libcst transformers (defined once libcst is imported)."""
    class _TopLevel(cst.CSTTransformer):
        """Requote each outermost f-string (and, through it, every nested one)."""

        def __init__(self, module, placeholder):
            super().__init__()
            self.module, self.placeholder = module, placeholder

        def visit_FormattedString(self, node) -> bool:
            return False  # `_requote` handles everything inside

        def leave_FormattedString(self, original, updated):
            code = self.module.code_for_node(original)
            try:
                ast.parse(f"({code})")
                return updated  # already 3.11 syntax
            except SyntaxError:
                return _requote(self.module, original, frozenset(), self.placeholder)


    class _Inner(cst.CSTTransformer):
        """Inside a replacement field: literals become placeholders, f-strings are requoted."""

        def __init__(self, module, forbidden, placeholder):
            super().__init__()
            self.module, self.forbidden, self.placeholder = module, forbidden, placeholder

        def visit_FormattedString(self, node) -> bool:
            return False

        def leave_FormattedString(self, original, updated):
            return _requote(self.module, original, self.forbidden, self.placeholder)

        def visit_SimpleString(self, node) -> bool:
            return False

        def leave_SimpleString(self, original, updated):
            return _name(self.placeholder(_literal(self.module, original)), original)

        def visit_ConcatenatedString(self, node) -> bool:
            # Plain implicit concatenation is one literal; with an f-string part, requote the parts.
            return _has_fstring(node)

        def leave_ConcatenatedString(self, original, updated):
            if _has_fstring(original):
                return updated
            return _name(self.placeholder(_literal(self.module, original)), original)


    def _name(name: str, original):
        # Parenthesised, so that it stands where a quote needed no space before it (`else"y"`).
        return cst.Name(name, lpar=[cst.LeftParen(), *original.lpar], rpar=[*original.rpar, cst.RightParen()])


    def _has_fstring(node) -> bool:
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, cst.FormattedString):
                return True
            stack.extend(n.children)
        return False


    def _texts(parts) -> list[str]:
        out = []
        for p in parts:
            if isinstance(p, cst.FormattedStringText):
                out.append(p.value)
            elif isinstance(p, cst.FormattedStringExpression) and p.format_spec:
                out.extend(_texts(p.format_spec))
        return out


    def _requote(module, node, forbidden: frozenset, placeholder):
        prefix = node.prefix
        quote = node.quote
        multiline = "\n" in module.code_for_node(node)
        texts = _texts(node.parts)
        chosen = None
        for q in (quote,) + tuple(x for x in _QUOTES if x != quote):
            if q[0] in forbidden or (multiline and len(q) == 1):
                continue
            if q != quote and any(q[0] in t for t in texts):
                continue
            chosen = q
            break
        if chosen is None:
            raise _Unparsable("f-strings nested deeper than Python 3.11 quoting allows")
        inner = _Inner(module, forbidden | {chosen[0]}, placeholder)
        parts = [_part(p, inner) for p in node.parts]
        return node.with_changes(start=prefix + chosen, end=chosen, parts=parts)


    def _part(p, inner):
        if not isinstance(p, cst.FormattedStringExpression):
            return p
        expr = p.expression.visit(inner)
        spec = [_part(s, inner) for s in p.format_spec] if p.format_spec else p.format_spec
        # Comments inside a field are 3.12-only; whitespace that holds them is dropped.
        return _strip_comments(p.with_changes(expression=expr, format_spec=spec))


    class _NoComments(cst.CSTTransformer):
        def leave_Comment(self, original, updated):
            return cst.RemovalSentinel.REMOVE


    def _strip_comments(expr):
        return expr.visit(_NoComments())


    return _TopLevel


class _Restore(ast.NodeTransformer):
    def __init__(self, literals: dict[str, object]):
        self.literals = literals

    def visit_Name(self, node: ast.Name):
        if node.id in self.literals:
            return ast.copy_location(ast.Constant(self.literals[node.id]), node)
        return node
