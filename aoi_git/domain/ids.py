"""Task ids and where task files live.

Generated ids are `t-` + 10 base32 characters (50 random bits), so two clones never
mint the same id. They live in `tasks/<1st char>/<2nd char>/<id>.yaml`: a two-level fan-out
(32 x 32 folders) whose commit cost stays flat as the org grows: each commit rewrites
three small trees (~5 KB), where 1,024 folders under `tasks/` would rewrite a ~30 KB one.
People may name tasks themselves and save them anywhere under `tasks/`; the id is the
file name. Retrospectives (`retros/<1st>/<2nd>/<root id>.md`) are sharded the same way: one
per finished root, so a flat `retros/` rewrote a tree that grew with every project (4.4 ms
per root finish at 1,800 retrospectives, against 0.6 ms for a task's commit).
"""

from __future__ import annotations

import re

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols: no l, o, 0, 1
ID_BITS = 50


def new_task_id() -> str:
    import secrets  # (here: a command that only reads tasks starts ~8 ms quicker without it)

    n = secrets.randbits(ID_BITS)
    chars = []
    for _ in range(ID_BITS // 5):
        chars.append(_ALPHABET[n & 31])
        n >>= 5
    return "t-" + "".join(chars)


def is_valid_id(task_id: str) -> bool:
    return ID_RE.fullmatch(task_id) is not None  # not `match`: `$` lets "ab\n" through


def sharded(folder: str, task_id: str, suffix: str) -> str:
    """`<folder>/<c1>/<c2>/<id><suffix>`: c1, c2 the first two characters after `t-`."""
    stem = task_id[2:] if task_id.startswith("t-") and len(task_id) >= 4 else task_id
    return f"{folder}/{stem[0]}/{stem[1]}/{task_id}{suffix}"


def shard_path(task_id: str) -> str:
    """Repo-relative path for a task aoi creates (any valid id: 2 characters or more)."""
    return sharded("tasks", task_id, ".yaml")
