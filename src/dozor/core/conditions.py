"""The condition language of Gatus: ``[STATUS] == 200``, ``[BODY].status == UP``.

A condition compares one placeholder (maybe wrapped in ``len()`` or ``has()``) with a
value (maybe ``pat()`` or ``any()``). It is parsed once, when the config is validated, and
evaluated against the values a check measured::

    >>> condition = parse_condition("[STATUS] == any(200, 204)")
    >>> condition.evaluate({"STATUS": 503})
    (False, '[STATUS] (503) == any(200, 204)')
    >>> body = '{"data": [{"state": "UP"}]}'
    >>> parse_condition("[BODY].data[0].state == UP").evaluate({"BODY": body})
    (True, '[BODY].data[0].state (UP) == UP')

Values are typed by the check, and the literal on the right is read to match: a number for
``[STATUS]``, a duration (``14d``, ``48h``; a bare number means milliseconds) for the time
placeholders, ``true``/``false`` for ``[CONNECTED]``. Anything else compares as text, as
in Gatus, and ``<``/``>`` need both sides to be numbers.
"""

from __future__ import annotations

import fnmatch
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dozor.core.durations import parse_duration

PLACEHOLDERS = frozenset({
    "STATUS", "BODY", "HEADER", "RESPONSE_TIME", "CERTIFICATE_EXPIRATION", "IP",
    "CONNECTED", "DOMAIN_EXPIRATION", "DNS_RCODE",
})
"""Names a condition may use. Time placeholders are passed as ``timedelta``."""

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<=": operator.le,
    ">=": operator.ge, "<": operator.lt, ">": operator.gt,
}
_PLACEHOLDER = re.compile(r"\[([A-Z_]+)\](.*)", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(-?\d+)\]")
_CALL = re.compile(r"([a-z]+)\((.*)\)", re.DOTALL)
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


class Missing:
    """The value of a placeholder or JSON path that is not there, and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __str__(self) -> str:
        return f"missing: {self.reason}"


@dataclass(frozen=True, slots=True)
class _Operand:
    placeholder: str
    path: tuple[str | int, ...] = ()
    function: str | None = None  # "len" or "has"


@dataclass(frozen=True, slots=True)
class _Expected:
    values: tuple[str, ...]  # literal texts, already unquoted
    function: str | None = None  # "pat" or "any"


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed condition; ``str()`` gives back the text it was parsed from."""

    text: str
    left: _Operand
    op: str
    right: _Expected
    left_text: str
    right_text: str

    @property
    def placeholder(self) -> str:
        """The placeholder it reads, so a check can skip measuring what nobody asks for."""
        return self.left.placeholder

    def __str__(self) -> str:
        return self.text

    def evaluate(self, values: Mapping[str, Any]) -> tuple[bool, str]:
        """``(ok, explanation)``; the explanation shows the measured value in brackets."""
        return self._evaluate(_Resolver(values))

    def _evaluate(self, resolver: _Resolver) -> tuple[bool, str]:
        actual = resolver.resolve(self.left)
        ok = False if isinstance(actual, Missing) else _compare(actual, self.op, self.right)
        return ok, f"{self.left_text} ({_show(actual)}) {self.op} {self.right_text}"


def evaluate_all(
    conditions: tuple[Condition, ...] | list[Condition], values: Mapping[str, Any]
) -> list[str]:
    """Evaluate every condition (a JSON body is parsed once); the failures' explanations.

    >>> evaluate_all([parse_condition("[STATUS] < 300")], {"STATUS": 200})
    []
    """
    resolver = _Resolver(values)
    failures = []
    for condition in conditions:
        ok, explanation = condition._evaluate(resolver)
        if not ok:
            failures.append(explanation)
    return failures


def parse_condition(text: str) -> Condition:
    """Parse one condition; ValueError says what is wrong with it."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty condition")
    op, position = _find_operator(cleaned)
    left_text, right_text = cleaned[:position].strip(), cleaned[position + len(op):].strip()
    left, right = _parse_left(left_text), _parse_right(right_text, op)
    if right.function == "pat" and op not in ("==", "!="):
        raise ValueError(f"pat() only works with == or != in {cleaned!r}")
    if right.function == "any" and op not in ("==", "!="):
        raise ValueError(f"any() only works with == or != in {cleaned!r}")
    return Condition(cleaned, left, op, right, left_text, right_text)


def _find_operator(text: str) -> tuple[str, int]:
    """The one comparison operator outside quotes, brackets and parentheses."""
    found: list[tuple[str, int]] = []
    depth, quote, index = 0, "", 0
    while index < len(text):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and char in "=!<>":
            op = text[index:index + 2] if text[index:index + 2] in _OPERATORS else char
            if op not in _OPERATORS:
                raise ValueError(f"unknown operator {op!r} in {text!r}")
            found.append((op, index))
            index += len(op)
            continue
        index += 1
    if len(found) != 1:
        raise ValueError(
            f"expected exactly one of ==, !=, <, <=, >, >= in {text!r} "
            "(quote values that contain them)"
        )
    return found[0]


def _parse_left(text: str) -> _Operand:
    call = _CALL.fullmatch(text)
    if call:
        function, inner = call.groups()
        if function not in ("len", "has"):
            raise ValueError(f"{function}() cannot be on the left side; use len() or has()")
        return _Operand(*_parse_placeholder(inner.strip()), function=function)
    return _Operand(*_parse_placeholder(text))


def _parse_placeholder(text: str) -> tuple[str, tuple[str | int, ...]]:
    match = _PLACEHOLDER.fullmatch(text)
    if not match:
        raise ValueError(f"the left side must be a placeholder like [STATUS], got {text!r}")
    name, rest = match.groups()
    if name not in PLACEHOLDERS:
        known = ", ".join(f"[{known}]" for known in sorted(PLACEHOLDERS))
        raise ValueError(f"unknown placeholder [{name}] (known: {known})")
    if name == "HEADER":
        if not rest.startswith(".") or len(rest) < 2:
            raise ValueError("[HEADER] needs a header name, like [HEADER].Content-Type")
        return name, (rest[1:],)
    if rest and name != "BODY":
        raise ValueError(f"[{name}] takes no path, got {rest!r} after it")
    return name, _parse_path(rest)


def _parse_path(text: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    position = 0
    for match in _PATH_PART.finditer(text):
        if match.start() != position:
            break
        key, index = match.groups()
        parts.append(int(index) if index is not None else key)
        position = match.end()
    if position != len(text):
        raise ValueError(f"bad JSON path {text!r}: use .key and [index], like .data[0].id")
    return tuple(parts)


def _parse_right(text: str, op: str) -> _Expected:
    if not text:
        raise ValueError(f"nothing to compare with after {op}")
    if text.startswith("["):
        raise ValueError(f"the right side must be a value, not a placeholder: {text!r}")
    call = _CALL.fullmatch(text)
    if not call:
        return _Expected((_unquote(text),))
    function, inner = call.groups()
    if function == "pat":
        return _Expected((_unquote(inner.strip()),), "pat")
    if function == "any":
        items = tuple(_unquote(item.strip()) for item in _split_arguments(inner))
        if not all(items):
            raise ValueError(f"any() needs values separated by commas, got {text!r}")
        return _Expected(items, "any")
    raise ValueError(f"{function}() cannot be on the right side; use pat() or any()")


def _split_arguments(text: str) -> list[str]:
    items, current, quote = [], "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ",":
            items.append(current)
            current = ""
            continue
        current += char
    return [*items, current]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


class _Resolver:
    """Looks placeholders up in the values, parsing a JSON body at most once."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self._json: Any = None

    def resolve(self, operand: _Operand) -> Any:
        value = self._lookup(operand)
        if operand.function == "has":
            return not isinstance(value, Missing)
        if operand.function == "len" and not isinstance(value, Missing):
            if not isinstance(value, str | list | dict):
                return Missing(f"len() needs text, a list or an object, got {_show(value)}")
            return len(value)
        return value

    def _lookup(self, operand: _Operand) -> Any:
        name = operand.placeholder
        if name not in self.values:
            return Missing(f"no [{name}] for this check")
        value = self.values[name]
        if name == "HEADER":
            return _header(value, str(operand.path[0]))
        if not operand.path:
            return value
        return _walk(self._body_json(), operand.path)

    def _body_json(self) -> Any:
        if self._json is None:
            try:
                self._json = (json.loads(self.values["BODY"]),)
            except ValueError:
                self._json = (Missing("the body is not JSON"),)
        return self._json[0]


def _header(headers: Mapping[str, str], name: str) -> Any:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP headers are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return Missing(f"no header {name}") if value is None else value


def _walk(document: Any, path: tuple[str | int, ...]) -> Any:
    value = document
    for part in path:
        if isinstance(value, Missing):
            return value
        if isinstance(part, int):
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                return Missing(f"no item [{part}]")
            value = value[part]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return Missing(f"no key {part!r}")
    return value


def _compare(actual: Any, op: str, expected: _Expected) -> bool:
    if expected.function == "pat":
        matched = fnmatch.fnmatchcase(_text(actual), expected.values[0])
        return matched if op == "==" else not matched
    if expected.function == "any":
        matched = any(_compare_one(actual, "==", value) for value in expected.values)
        return matched if op == "==" else not matched
    return _compare_one(actual, op, expected.values[0])


def _compare_one(actual: Any, op: str, literal: str) -> bool:
    compare = _OPERATORS[op]
    expected = _coerce(actual, literal)
    if expected is not None:
        return bool(compare(actual, expected))
    if op in ("==", "!="):
        return bool(compare(_text(actual), literal))
    # Ordering text only makes sense for numbers written as text, like "5" in JSON.
    number, expected = _number(_text(actual)), _number(literal)
    return number is not None and expected is not None and bool(compare(number, expected))


def _coerce(actual: Any, literal: str) -> Any:
    """The literal read as the actual value's type, or None to fall back to text."""
    if isinstance(actual, bool):
        lowered = literal.lower()
        return lowered == "true" if lowered in ("true", "false") else None
    if isinstance(actual, int | float):
        return _number(literal)
    if isinstance(actual, timedelta):
        number = _number(literal)
        if number is not None:
            return timedelta(milliseconds=number)
        try:
            return parse_duration(literal)
        except ValueError:
            return None
    return None


def _number(text: str) -> float | None:
    if not _NUMBER.fullmatch(text.strip()):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    """A value as Gatus compares it: JSON spelling for true, false, null and structures."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | list | dict):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, timedelta):
        return _show_duration(value)
    return str(value)


def _show(value: Any) -> str:
    text = str(value) if isinstance(value, Missing) else _text(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _show_duration(value: timedelta) -> str:
    milliseconds = value.total_seconds() * 1000
    if abs(milliseconds) < 1000:
        return f"{milliseconds:.0f}ms"
    if abs(milliseconds) < 60_000:
        return f"{milliseconds / 1000:.1f}s"
    sign, rest = ("-" if milliseconds < 0 else ""), int(abs(milliseconds) // 1000)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return sign + "".join(parts[:2])
