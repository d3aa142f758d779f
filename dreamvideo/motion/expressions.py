"""Math expressions in schedules: ``1.02 + 0.02*sin(2*pi*t/20)``, ``1 + 0.3*beat``.

Never Python's ``eval``: the text is parsed by :mod:`ast` and only a whitelist of node types
is compiled, into a tree of closures over floats. Every value is a float, so ``9**9**9``
overflows at once instead of building a huge integer; ``**`` goes through :func:`math.pow`,
which raises on overflow and on a negative base with a fractional exponent rather than
returning a complex number. Constant parts are folded while compiling, so a constant that
cannot be computed is refused when the schedule is read, before any render starts.

Names: ``t`` (frame number), ``s`` (seconds), ``fps``, the constants ``pi``, ``tau`` and
``e``, and the audio envelopes (``rms``, ``onset``, ``beat``, ``bass``, ``mid``, ``treble``,
each 0..1; 0 when no audio is given).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dreamvideo.errors import UserError
from dreamvideo.names import ENVELOPES

MAX_EXPRESSION_CHARS = 1_000
MAX_NODES = 300  # a long hand-written expression has tens

VARIABLES = ("t", "s", "fps", *ENVELOPES)
CONSTANTS = {"pi": math.pi, "tau": math.tau, "e": math.e}


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def _smoothstep(lo: float, hi: float, x: float) -> float:
    a = _clamp((x - lo) / (hi - lo), 0.0, 1.0) if hi != lo else float(x >= hi)
    return a * a * (3 - 2 * a)


# name -> (function, least arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable[..., float], int, int]] = {
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "atan2": (math.atan2, 2, 2),
    "sinh": (math.sinh, 1, 1),
    "cosh": (math.cosh, 1, 1),
    "tanh": (math.tanh, 1, 1),
    "abs": (abs, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (math.log, 1, 2),
    "log10": (math.log10, 1, 1),
    "pow": (math.pow, 2, 2),
    "floor": (lambda x: float(math.floor(x)), 1, 1),
    "ceil": (lambda x: float(math.ceil(x)), 1, 1),
    "round": (lambda x: float(round(x)), 1, 1),
    "sign": (lambda x: float((x > 0) - (x < 0)), 1, 1),
    "min": (min, 2, 32),
    "max": (max, 2, 32),
    "clamp": (_clamp, 3, 3),
    "smoothstep": (_smoothstep, 3, 3),
    "frac": (lambda x: x - math.floor(x), 1, 1),
}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.FloorDiv: lambda a, b: float(math.floor(a / b)),
    ast.Pow: math.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}

ALLOWED = (
    "numbers, + - * / // % **, comparisons, 'a if c else b', the names "
    + ", ".join((*VARIABLES, *CONSTANTS))
    + " and the functions "
    + ", ".join(FUNCTIONS)
)

Env = Mapping[str, float]
_Node = Callable[[Env], float]


class ExpressionError(UserError):
    """An expression is malformed, not allowed, or cannot be computed."""


@dataclass(frozen=True)
class Expression:
    """A compiled expression; call it with the names' values to get a float."""

    text: str
    _fn: _Node
    constant: bool  # uses no names
    uses: frozenset[str] = frozenset()  # the variables it reads

    def __call__(self, env: Env) -> float:
        try:
            value = self._fn(env)
        except (ArithmeticError, ValueError) as e:
            raise ExpressionError(_why(e)) from None
        if not math.isfinite(value):
            raise ExpressionError("the result is not a finite number")
        return value


def _why(e: Exception) -> str:
    if isinstance(e, ZeroDivisionError):
        return "division by zero"
    if isinstance(e, OverflowError):
        return "a number grows too large"
    return "a value is outside what a function or power accepts"


class _Compiler:
    def __init__(self, offset: int) -> None:
        self.offset, self.nodes = offset, 0  # offset: where the expression starts in its text
        self.uses: set[str] = set()

    def fail(self, node: ast.AST, what: str, allowed: bool = True) -> ExpressionError:
        """The error for ``node``; ``allowed`` adds what may be written (for what may not)."""
        col = getattr(node, "col_offset", 0) + self.offset
        return ExpressionError(
            f"{what} at position {col + 1}" + (f"; allowed: {ALLOWED}" if allowed else "")
        )

    def compile(self, node: ast.AST) -> tuple[_Node, bool]:
        """``(fn, constant)`` for ``node``; constant parts are computed right away."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, f"the expression has over {MAX_NODES} parts")
        fn, constant = self._compile(node)
        if constant:
            try:
                value = fn({})
            except (ArithmeticError, ValueError) as e:
                raise self.fail(node, _why(e), allowed=False) from None
            if not math.isfinite(value):
                raise self.fail(node, "a number that is not finite", allowed=False)
            return (lambda env: value), True
        return fn, False

    def _compile(self, node: ast.AST) -> tuple[_Node, bool]:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise self.fail(node, f"{type(node.value).__name__} {node.value!r} is not a number")
            try:
                value = float(node.value)
            except OverflowError:
                raise self.fail(node, "a number that is too large", allowed=False) from None
            return (lambda env: value), True
        if isinstance(node, ast.Name):
            name = node.id
            if name in CONSTANTS:
                value = CONSTANTS[name]
                return (lambda env: value), True
            if name not in VARIABLES:
                raise self.fail(node, f"unknown name {name!r}")
            self.uses.add(name)
            return (lambda env: float(env.get(name, 0.0))), False
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            op = _BINARY[type(node.op)]
            (a, ca), (b, cb) = self.compile(node.left), self.compile(node.right)
            return (lambda env: op(a(env), b(env))), ca and cb
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            uop = _UNARY[type(node.op)]
            a, ca = self.compile(node.operand)
            return (lambda env: uop(a(env))), ca
        if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
            parts = [self.compile(node.left), *(self.compile(c) for c in node.comparators)]
            ops = [_COMPARE[type(o)] for o in node.ops]

            def compare(env: Env) -> float:
                values = [p(env) for p, _ in parts]
                return float(
                    all(op(x, y) for op, x, y in zip(ops, values, values[1:], strict=False))
                )

            return compare, all(c for _, c in parts)
        if isinstance(node, ast.IfExp):
            (c, cc), (a, ca), (b, cb) = (
                self.compile(n) for n in (node.test, node.body, node.orelse)
            )
            return (lambda env: a(env) if c(env) else b(env)), cc and ca and cb
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                self.compile(node.func)  # says what is wrong with it
                raise self.fail(node, "calling the result of an expression is not allowed")
            if node.func.id not in FUNCTIONS:
                raise self.fail(node, f"calling {node.func.id!r} is not allowed")
            if node.keywords:
                raise self.fail(node, f"{node.func.id}() takes no keyword arguments")
            fn, least, most = FUNCTIONS[node.func.id]
            if not least <= len(node.args) <= most or any(
                isinstance(a, ast.Starred) for a in node.args
            ):
                count = f"{least}" if least == most else f"{least} to {most}"
                raise self.fail(node, f"{node.func.id}() takes {count} arguments")
            args = [self.compile(a) for a in node.args]
            return (lambda env: float(fn(*(a(env) for a, _ in args)))), all(c for _, c in args)
        if isinstance(node, ast.Attribute):
            raise self.fail(node, "attribute access (the '.') is not allowed")
        if isinstance(node, ast.Subscript):
            raise self.fail(node, "indexing ('[...]') is not allowed")
        what = {ast.BoolOp: "'and' / 'or'", ast.Lambda: "lambda", ast.NamedExpr: "':='"}
        raise self.fail(node, f"{what.get(type(node), type(node).__name__.lower())} is not allowed")


def compile_expression(text: str, offset: int = 0) -> Expression:
    """Compile ``text``; :class:`ExpressionError` says what is wrong and where: a 1-based
    position, counted from ``offset`` characters before ``text`` (its place in a schedule)."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"the expression has {len(text):,} characters; at most "
            f"{MAX_EXPRESSION_CHARS:,} are accepted"
        )
    source = text.strip()
    offset += len(text) - len(text.lstrip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        raise ExpressionError(
            f"it is not a valid expression ({e.msg}) at position {offset + (e.offset or 1)}"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("it is nested too deeply") from None
    compiler = _Compiler(offset)
    fn, constant = compiler.compile(tree.body)
    return Expression(source, fn, constant, frozenset(compiler.uses))
