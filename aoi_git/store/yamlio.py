"""YAML reading and writing on libyaml's C loader and dumper (never pure Python on hot paths).

Reading is bounded, so that no file anyone writes can make aoi do unbounded work or crash:
a document is at most `MAX_BYTES` long, nests at most `MAX_DEPTH` collections deep,
expands (aliases counted each time they are used) to at most `MAX_VALUES` values, holds
no integer literal longer than `MAX_INT_CHARS` characters and no infinite or NaN float,
and every tag's value must be well formed. A document past any bound is a `YamlError`
naming the line, like malformed YAML. The checks cost one walk over the loaded values.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

try:
    _BaseLoader: type = yaml.CSafeLoader
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - libyaml missing
    _BaseLoader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper

MAX_BYTES = 4 << 20  # one org file (a task with a full 1 MiB result fits several times)
MAX_DEPTH = 64  # nested mappings and lists (aoi's own files nest at most 4)
MAX_VALUES = 100_000  # values in the document with every alias expanded
MAX_INT_CHARS = 32  # an integer literal (any base): far past what a 64-bit count needs


class YamlError(ValueError):
    """Unparseable or out-of-bounds YAML; `line` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


class _ValueRefused(yaml.constructor.ConstructorError):
    """A scalar the bounded loader will not build (raised with the scalar's mark)."""


class _Loader(_BaseLoader):
    """libyaml's safe loader with the scalar constructors that can fail made to fail as
    YAML errors with a line (not ValueError, AttributeError or OverflowError)."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_INT_CHARS:
            raise _ValueRefused(None, None, f"integer longer than {MAX_INT_CHARS} characters",
                                node.start_mark)
        try:
            value: int = super().construct_yaml_int(node)
        except ValueError:
            raise _ValueRefused(None, None, f"not an integer: {_short(node.value)}",
                                node.start_mark) from None
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        try:
            value: float = super().construct_yaml_float(node)
        except (ValueError, OverflowError):
            raise _ValueRefused(None, None, f"not a number: {_short(node.value)}",
                                node.start_mark) from None
        if not math.isfinite(value):
            raise _ValueRefused(None, None, f"{_short(node.value)} is not a finite number",
                                node.start_mark)
        return value

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, TypeError, AttributeError, OverflowError):
            raise _ValueRefused(None, None, f"not a timestamp: {_short(node.value)}",
                                node.start_mark) from None


for _tag, _method in (("int", _Loader.construct_yaml_int),
                      ("float", _Loader.construct_yaml_float),
                      ("timestamp", _Loader.construct_yaml_timestamp)):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _method)


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def load(data: bytes | str) -> Any:
    """The document in `data`, within the bounds above, or YamlError."""
    if len(data) > MAX_BYTES:
        raise YamlError(f"file larger than {MAX_BYTES >> 20} MiB ({len(data)} bytes)", 1)
    if isinstance(data, bytes):
        raw = data
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise YamlError(f"not UTF-8 text (byte {exc.start})", line) from None
    try:
        value = yaml.load(data, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or exc.context or "malformed YAML"
        prefix = "" if isinstance(exc, _ValueRefused) else "malformed YAML: "
        raise YamlError(f"{prefix}{problem}", line) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"malformed YAML: {exc}", 0) from None
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        # a constructor of a tag not guarded above (e.g. !!binary, !!set)
        raise YamlError(f"cannot build a value: {type(exc).__name__}: {_short(str(exc), 80)}",
                        0) from None
    if isinstance(value, (dict, list)):
        past = _bounds_problem(value)
        if past is not None:
            raise YamlError(past, _line_past_bounds(data))
    return value


def _bounds_problem(root: dict[Any, Any] | list[Any]) -> str | None:
    """Why `root` is past MAX_DEPTH or MAX_VALUES (aliases count every use), or None.

    Walks level by level; keys need no look (the safe loader builds only scalar keys)."""
    count = 0
    depth = 1
    level: list[Any] = [root]
    while level:
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels (or an alias refers to itself)"
        below: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            count += len(children)
            if count > MAX_VALUES:
                return f"more than {MAX_VALUES} values (counting each use of an alias)"
            below += [c for c in children if type(c) is dict or type(c) is list]
        level = below
        depth += 1
    return None


def _line_past_bounds(text: str) -> int:
    """1-based line of the first node past MAX_DEPTH or MAX_VALUES (slow path only)."""
    try:
        root = yaml.compose(text, Loader=_BaseLoader)
    except yaml.YAMLError:
        return 0
    count = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            continue
        if depth > MAX_DEPTH:
            return int(node.start_mark.line) + 1
        children = [v for _, v in node.value] if isinstance(node, yaml.MappingNode) \
            else list(node.value)
        count += len(children)
        if count > MAX_VALUES:
            return int(node.start_mark.line) + 1
        stack.extend((child, depth + 1) for child in reversed(children))
    return 1


def dump(data: Any) -> bytes:
    text = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
        width=100,
    )
    return text.encode("utf-8")


def key_lines(data: bytes | str) -> dict[tuple[str, ...], int]:
    """1-based line of each mapping key path, for error messages (slow path only).

    Paths through an alias are not listed (their lines are those of the anchor), so the
    walk is bounded by the size of the text."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    out: dict[tuple[str, ...], int] = {}
    if len(data) > MAX_BYTES:
        return out
    try:
        root = yaml.compose(data, Loader=_BaseLoader)
    except yaml.YAMLError:
        return out
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())] if root is not None else []
    while stack:
        node, path = stack.pop()
        if id(node) in seen or len(path) > MAX_DEPTH:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = path + (str(k.value),)
                out.setdefault(key, k.start_mark.line + 1)
                stack.append((v, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                key = path + (str(i),)
                out.setdefault(key, item.start_mark.line + 1)
                stack.append((item, key))
    return out
