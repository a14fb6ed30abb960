"""A small, safe expression language for ``branch`` steps.

Expressions read the flow context and compare: ``variables.amount > 500 and
steps.ask.values.recognised == "no"``. The grammar is a subset of Python's, parsed with ``ast``
and checked node by node, then compiled to closures once:

- literals: numbers, strings, ``true``/``false``/``null`` (Python's spellings work too), lists;
- dotted paths into the context (``customer.fields.plan``), with ``["key"]`` or ``[0]`` for
  segments that are not names; a missing path is ``null``;
- ``== != < <= > >=`` (chains too), ``in``/``not in``, ``and or not``, ``+ - * / %``.

Nothing else: no calls, no attribute access on Python objects, no names starting with ``__``.
Evaluation never raises: ordering or ``in`` with mismatched types (or ``null``) is false,
arithmetic on anything but numbers (or ``+`` on two strings) is ``null``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hub.core.templates import lookup

MAX_LENGTH = 2000
MAX_DEPTH = 40
LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}

Evaluator = Callable[[Mapping[str, Any]], Any]


class Expression:
    """A parsed expression: :meth:`evaluate` it against many contexts."""

    __slots__ = ("source", "_names", "_evaluate")

    def __init__(self, source: str, names: list[str], evaluate: Evaluator):
        self.source = source
        self._names = names
        self._evaluate = evaluate

    def names(self) -> list[str]:
        """The dotted context paths the expression reads, once each, in order."""
        return list(self._names)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The value of the expression in ``context`` (a branch takes the truth of it)."""
        return self._evaluate(context)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(text: str) -> Expression:
    """Parse and check ``text``; raises ValueError with a readable reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be a non-empty expression")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"must be at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        hint = " (compare with ==)" if "=" in text and "==" not in text else ""
        raise ValueError(f"invalid syntax{where}: {exc.msg}{hint}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ValueError("is too deeply nested or malformed") from None
    names: dict[str, None] = {}
    evaluate = _Compiler(names).compile(tree.body, 0)
    return Expression(text, list(names), evaluate)


# --- value semantics (total functions: they never raise) ------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    # JSON has no 1 == true: keep booleans apart from numbers.
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    try:
        return bool(left == right)
    except Exception:  # exotic objects in a context must not break a branch
        return False


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def ordered(left: Any, right: Any) -> bool:
        if (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
            return compare(left, right)
        return False
    return ordered


def _contains(left: Any, right: Any) -> bool | None:
    """``left in right``, or None when ``right`` cannot contain anything."""
    if isinstance(right, str):
        return isinstance(left, str) and left in right
    if isinstance(right, Mapping):
        return isinstance(left, str) and left in right
    if isinstance(right, Sequence) and not isinstance(right, bytes):
        return any(_equal(left, item) for item in right)
    return None


def _in(left: Any, right: Any) -> bool:
    return _contains(left, right) is True


def _not_in(left: Any, right: Any) -> bool:
    return _contains(left, right) is False


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: _equal,
    ast.NotEq: lambda a, b: not _equal(a, b),
    ast.Lt: _ordered(operator.lt),
    ast.LtE: _ordered(operator.le),
    ast.Gt: _ordered(operator.gt),
    ast.GtE: _ordered(operator.ge),
    ast.In: _in,
    ast.NotIn: _not_in,
}


def _arithmetic(apply: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def arithmetic(left: Any, right: Any) -> Any:
        if not (_is_number(left) and _is_number(right)):
            return None
        try:
            result = apply(left, right)
        except (ArithmeticError, ValueError):  # division by zero, int too large for a float
            return None
        if isinstance(result, float) and not math.isfinite(result):
            return None
        return result
    return arithmetic


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    return _arithmetic(operator.add)(left, right)


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: _arithmetic(operator.sub),
    ast.Mult: _arithmetic(operator.mul),
    ast.Div: _arithmetic(operator.truediv),
    ast.Mod: _arithmetic(operator.mod),
}
_SYMBOLS = {ast.Pow: "**", ast.FloorDiv: "//", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
            ast.LShift: "<<", ast.RShift: ">>", ast.MatMult: "@", ast.Is: "is", ast.IsNot: "is not",
            ast.Invert: "~"}


def _truthy(value: Any) -> bool:
    try:
        return bool(value)
    except Exception:
        return False


# --- compilation ------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, names: dict[str, None]):
        self.names = names

    def compile(self, node: ast.expr, depth: int) -> Evaluator:
        if depth > MAX_DEPTH:
            raise ValueError("is too deeply nested")
        depth += 1
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            return self._path(node)
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.compile(item, depth) for item in node.elts]
            return lambda ctx: [item(ctx) for item in items]
        if isinstance(node, ast.BoolOp):
            values = [self.compile(value, depth) for value in node.values]
            if isinstance(node.op, ast.And):
                return lambda ctx: all(_truthy(value(ctx)) for value in values)
            return lambda ctx: any(_truthy(value(ctx)) for value in values)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, depth)
        if isinstance(node, ast.BinOp):
            apply = _BINARY.get(type(node.op))
            if apply is None:
                raise ValueError(f"operator {_SYMBOLS.get(type(node.op), '?')} is not allowed "
                                 "(use + - * / %)")
            left, right = self.compile(node.left, depth), self.compile(node.right, depth)
            return lambda ctx: apply(left(ctx), right(ctx))
        if isinstance(node, ast.Compare):
            return self._compare(node, depth)
        raise ValueError(_refusal(node))

    def _constant(self, node: ast.Constant) -> Evaluator:
        value = node.value
        if value is not None and not isinstance(value, bool | int | float | str):
            raise ValueError(f"{type(value).__name__} literals are not allowed")
        return lambda ctx: value

    def _path(self, node: ast.expr) -> Evaluator:
        if isinstance(node, ast.Name) and node.id in LITERALS:
            literal = LITERALS[node.id]
            return lambda ctx: literal
        segments = _segments(node)
        for segment in segments:
            if segment.startswith("__"):
                raise ValueError(f"{segment!r}: names starting with '__' are not allowed")
        path = ".".join(segments)
        self.names.setdefault(path, None)
        return lambda ctx: lookup(ctx, path)

    def _unary(self, node: ast.UnaryOp, depth: int) -> Evaluator:
        operand = self.compile(node.operand, depth)
        if isinstance(node.op, ast.Not):
            return lambda ctx: not _truthy(operand(ctx))
        if isinstance(node.op, ast.USub):
            return lambda ctx: _arithmetic(operator.sub)(0, operand(ctx))
        if isinstance(node.op, ast.UAdd):
            return lambda ctx: _arithmetic(operator.add)(0, operand(ctx))
        raise ValueError(f"operator {_SYMBOLS.get(type(node.op), '?')} is not allowed")

    def _compare(self, node: ast.Compare, depth: int) -> Evaluator:
        checks = []
        for op in node.ops:
            check = _COMPARE.get(type(op))
            if check is None:
                hint = " (compare with == null)" if isinstance(op, ast.Is | ast.IsNot) else ""
                raise ValueError(f"operator {_SYMBOLS.get(type(op), '?')} is not allowed{hint}")
            checks.append(check)
        operands = [self.compile(item, depth) for item in [node.left, *node.comparators]]

        def compare(ctx: Mapping[str, Any]) -> bool:
            left = operands[0](ctx)
            for check, operand in zip(checks, operands[1:], strict=True):
                right = operand(ctx)
                if not check(left, right):
                    return False
                left = right
            return True
        return compare


def _segments(node: ast.expr) -> list[str]:
    """``a.b["c"][0]`` → ``["a", "b", "c", "0"]``; anything else in a path is refused."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [*_segments(node.value), node.attr]
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value \
                and "." not in key.value:
            return [*_segments(node.value), key.value]
        if isinstance(key, ast.Constant) and type(key.value) is int and key.value >= 0:
            return [*_segments(node.value), str(key.value)]
        raise ValueError("an index must be a string without dots or a non-negative integer, "
                         'as in steps["ask"].values[0]')
    raise ValueError(f"{_refusal(node)} inside a path")


def _refusal(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return "function calls are not allowed"
    if isinstance(node, ast.Lambda):
        return "lambdas are not allowed"
    if isinstance(node, ast.IfExp):
        return "'x if c else y' is not allowed (use a branch case)"
    if isinstance(node, ast.Dict | ast.Set):
        return "object and set literals are not allowed (lists are)"
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return "comprehensions are not allowed"
    if isinstance(node, ast.NamedExpr):
        return "assignment is not allowed (compare with ==)"
    if isinstance(node, ast.JoinedStr):
        return "f-strings are not allowed"
    return f"{type(node).__name__} is not allowed"
