"""Task ids: random, collision-free, sharded on disk, resolvable by a unique prefix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aoi_git.domain.ids import _ALPHABET, ID_BITS, ID_RE, is_valid_id, new_task_id, shard_path
from aoi_git.domain.model import Actor, ActorKind
from aoi_git.errors import AoiError
from aoi_git.org import task_ops
from aoi_git.org.organisation import load_org
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit

GENERATED = re.compile(r"^t-[a-z2-9]{10}$")


def test_generated_ids_match_the_id_regex_and_carry_50_bits() -> None:
    assert ID_BITS >= 50
    assert len(set(_ALPHABET)) == 32
    for _ in range(1000):
        tid = new_task_id()
        assert ID_RE.match(tid) and is_valid_id(tid)
        assert GENERATED.match(tid), tid
        assert len(tid) == 12  # "t-" + 10 base32 characters = 50 bits
        assert set(tid[2:]) <= set(_ALPHABET)


def test_ten_thousand_generated_ids_are_unique() -> None:
    ids = [new_task_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    # every symbol of the alphabet shows up in every position: the bits are really random
    for pos in range(2, 12):
        assert len({tid[pos] for tid in ids}) == 32


def test_shard_path_layout() -> None:
    assert shard_path("t-4k2m9x7q3a") == "tasks/4/k/t-4k2m9x7q3a.yaml"
    for _ in range(100):
        tid = new_task_id()
        path = shard_path(tid)
        parts = path.split("/")
        assert parts[0] == "tasks" and len(parts) == 4
        assert parts[1] == tid[2] and parts[2] == tid[3]
        assert parts[3] == f"{tid}.yaml"


def test_shard_path_of_the_shortest_person_chosen_ids() -> None:
    # "t-a" and "t-" are valid ids; their shard comes from the whole id, not a 0-1 char stem
    assert shard_path("t-a") == "tasks/t/-/t-a.yaml"
    assert shard_path("t-") == "tasks/t/-/t-.yaml"
    assert shard_path("ab") == "tasks/a/b/ab.yaml"
    assert shard_path("t-ab") == "tasks/a/b/t-ab.yaml"


@pytest.mark.parametrize("good", ["ab", "login-page", "t-4k2m9x7q3a", "a" * 64, "0a", "a-"])
def test_valid_ids(good: str) -> None:
    assert is_valid_id(good)


@pytest.mark.parametrize(
    "bad", ["", "a", "-ab", "A1", "Login", "a" * 65, "../x", "a/b", "a.b", "a b", "é1", "a\n"]
)
def test_invalid_ids(bad: str) -> None:
    assert not is_valid_id(bad)


def _make(store: Store, *chosen: str, generated: int = 0) -> list[str]:
    made: list[str] = []
    human = Actor(ActorKind.HUMAN, "Test Person")

    def build(txn: Txn) -> None:
        made.clear()
        tasks = store.load_tasks().tasks
        for tid in chosen:
            made.append(task_ops.new_task(txn, tasks, f"task {tid}", task_id=tid).id)
        for i in range(generated):
            made.append(task_ops.new_task(txn, tasks, f"generated {i}").id)

    commit(store, build, human)
    return made


def test_resolve_id_by_unique_prefix(org_dir: Path) -> None:
    store = Store(org_dir)
    made = _make(store, "alpha-one", "alpha-two", "beta", generated=3)
    org = load_org(Store(org_dir))
    assert org.resolve_id("beta") == "beta"
    assert org.resolve_id("alpha-o") == "alpha-one"
    assert org.resolve_id("alpha-t") == "alpha-two"
    for tid in made[3:]:
        assert org.resolve_id(tid) == tid
        stem = tid[2:]
        others = [t[2:] for t in made[3:] if t != tid]
        n = next(k for k in range(1, 11) if all(not o.startswith(stem[:k]) for o in others))
        n = max(n, 2)
        assert org.resolve_id(tid[: 2 + n]) == tid  # like a git short SHA
        assert org.resolve_id(stem[:n]) == tid  # the `t-` may be left out
    assert org.task("alpha-o").title == "task alpha-one"


def test_ambiguous_prefix_names_the_candidates(org_dir: Path) -> None:
    _make(Store(org_dir), "alpha-one", "alpha-two")
    org = load_org(Store(org_dir))
    with pytest.raises(AoiError) as info:
        org.resolve_id("alpha")
    msg = str(info.value)
    assert "ambiguous" in msg and "alpha-one" in msg and "alpha-two" in msg
    assert "\n" not in msg


def test_unknown_id_is_an_aoi_error(org_dir: Path) -> None:
    _make(Store(org_dir), "alpha-one")
    org = load_org(Store(org_dir))
    for unknown in ("zzz", "t-zzzz", "alpha-one-more", "../x"):
        with pytest.raises(AoiError, match="no task") as info:
            org.resolve_id(unknown)
        assert "aoi task list" in str(info.value)


def test_chosen_id_goes_to_tasks_top_level_generated_id_is_sharded(org_dir: Path) -> None:
    store = Store(org_dir)
    chosen, generated = _make(store, "login-page", generated=1)
    org = load_org(Store(org_dir))
    assert org.path_of(chosen) == "tasks/login-page.yaml"
    assert org.path_of(generated) == shard_path(generated)
    assert (org_dir / shard_path(generated)).is_file()


def test_new_task_refuses_bad_or_taken_ids(org_dir: Path) -> None:
    store = Store(org_dir)
    _make(store, "taken")
    for bad in ("../x", "Bad", "a", "x/../../y"):
        with pytest.raises(AoiError, match="not a valid task id"):
            _make(store, bad)
    with pytest.raises(AoiError, match="already exists"):
        _make(store, "taken")
    assert not (org_dir.parent / "x.yaml").exists()
