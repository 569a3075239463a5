"""The merged task file in the shape a person gave it: comments, key order, quoting and
layout kept, only what the merge changed rewritten.

The merge itself (`task_merge`) works on plain values read by aoi's own loader. This
module carries the result over onto a round-trip (ruamel) reading of the side a person
formatted: a key whose value the merge left as that side had it keeps its text exactly;
a changed value is written anew, a removed key goes, a new key is added at the end. The
outcome is read back with aoi's loader and must equal the merged values; otherwise (some
YAML the two readers see differently) it is None and the caller writes the plain form.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

from aoi_git.store import yamlio


def render_like(text: bytes, values: Mapping[Any, Any], merged: Mapping[Any, Any],
                same: Callable[[Any, Any], bool]) -> bytes | None:
    """`merged` written in the shape of `text` (whose values, by aoi's reader, are
    `values`); None when that cannot be done exactly."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-fold a person's long lines
    try:
        doc = yaml.load(text)
    except Exception:  # the person's side does not round-trip: the plain form will do
        return None
    if not isinstance(doc, CommentedMap):
        return None
    _carry(doc, values, merged, same)
    out = io.StringIO()
    try:
        yaml.dump(doc, out)
    except Exception:
        return None
    data = out.getvalue().encode("utf-8")
    try:
        back = yamlio.load(data)
    except yamlio.YamlError:
        return None
    return data if isinstance(back, dict) and same(back, dict(merged)) else None


def _carry(node: Any, values: Mapping[Any, Any], merged: Mapping[Any, Any],
           same: Callable[[Any, Any], bool]) -> None:
    from ruamel.yaml.comments import CommentedMap

    for key in [k for k in node if k not in merged]:
        del node[key]
    for key, value in merged.items():
        if key in node and key in values and same(values[key], value):
            continue  # untouched: its text stays as the person wrote it
        old = node.get(key)
        if (isinstance(old, CommentedMap) and isinstance(value, Mapping)
                and isinstance(values.get(key), Mapping)):
            _carry(old, values[key], value, same)
            continue
        node[key] = _fresh(value)


def _fresh(value: Any) -> Any:
    """A new value as a person would want to edit it: multi-line text as a `|` block."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    if isinstance(value, Mapping):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value
