"""YAML reading and writing on libyaml's C loader and dumper (never pure Python on hot paths)."""

from __future__ import annotations

from typing import Any

import yaml

try:
    _Loader: type = yaml.CSafeLoader
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader
    _Dumper = yaml.SafeDumper


class YamlError(ValueError):
    """Unparseable YAML; `line` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def load(data: bytes | str) -> Any:
    if isinstance(data, bytes):
        raw = data
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise YamlError(f"not UTF-8 text (byte {exc.start})", line) from None
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or exc.context or "malformed YAML"
        raise YamlError(f"malformed YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"malformed YAML: {exc}", 0) from None


def dump(data: Any) -> bytes:
    text = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
        width=100,
    )
    return text.encode("utf-8")


def key_lines(data: bytes | str) -> dict[tuple[str, ...], int]:
    """1-based line of each mapping key path, for error messages (slow path only)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    out: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(data, Loader=_Loader)
    except yaml.YAMLError:
        return out

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = path + (str(k.value),)
                out[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                key = path + (str(i),)
                out[key] = item.start_mark.line + 1
                walk(item, key)

    if root is not None:
        walk(root, ())
    return out
