"""Typed bookkeeping (`Task.bookkeeping`, the `extra:` mapping of a task file).

The fixture `tests/fixtures/tasks-0.1.0/` holds task files written by aoi 0.1.0, when the
bookkeeping was an untyped mapping: `aoi demo` and the org loop, hiring, daemon and
evolution scenarios, one file for each shape of `extra:` they wrote (`b/` holds other
versions of tasks in `a/`; `c/` the keys added since, of suspended and handed-over
tasks). They must load into the typed fields and be written back byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
from pathlib import Path

import jsonschema
import pytest

from aoi_git.domain.bookkeeping import NO_BOOKKEEPING, Bookkeeping, HireProposal
from aoi_git.domain.model import Task
from aoi_git.org.validate import parse_task_bytes
from aoi_git.store import yamlio
from aoi_git.store.org_store import Store
from aoi_git.store.task_cache import CACHE_VERSION

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "tasks-0.1.0"
FILES = sorted(FIXTURE.glob("*/*.yaml"))

QA_HIRE = HireProposal(talent="qa-engineer", as_id="qa-1",
                       reason="nobody writes integration tests for the login flow",
                       proposed_by="eng-1", about="t-7ppb6f23xx")

EXPECTED: dict[str, Bookkeeping] = {
    "a/job-2.yaml": Bookkeeping(budget_request="t-5a28m86vf3"),
    "a/release.yaml": Bookkeeping(subtasks=("t-58gqi7cq9t",), escalation="t-xr62n6mmhn"),
    "a/serve.yaml": Bookkeeping(waiting_on="t-x8egc4hrhr"),
    "a/ship.yaml": Bookkeeping(subtasks=("t-35jfq7esjp",),
                               superseded=("t-nbzwmxwq5d", "t-ix26g5uym3")),
    "a/t-38bn4pwny9.yaml": Bookkeeping(subtasks=("t-pcau2mvfdh", "t-45ea9mxuwa", "t-kbicw7nkbs"),
                                       review_task="t-tg3768yzhk"),
    "a/t-5a28m86vf3.yaml": Bookkeeping(about="job-2", budget_for="eng-1", day="2026-12-03",
                                       daily=True),
    "a/t-7rfzx8nmvr.yaml": Bookkeeping(about="p1", sop_branch="aoi/sop-p1"),
    "a/t-b6dneemzea.yaml": Bookkeeping(offboarding="eng-1",
                                       offboarding_tasks=("t-j42pk22phm", "t-x4cxnqsstb")),
    "a/t-ekcjqknuee.yaml": Bookkeeping(hiring_need="engineer", offboarded="eng-bad"),
    "a/t-jkdmiz5kw7.yaml": Bookkeeping(hire=QA_HIRE, about="t-7ppb6f23xx"),
    "a/t-kbicw7nkbs.yaml": Bookkeeping(review_task="t-qd8ved6qcg"),
    "a/t-nshwyak8r3.yaml": Bookkeeping(routed_to="eng-1"),
    "a/t-rdm4f4898n.yaml": Bookkeeping(about="serve", answers="serve"),
    "a/t-tg3768yzhk.yaml": Bookkeeping(about="t-38bn4pwny9"),
    "a/t-x8egc4hrhr.yaml": Bookkeeping(about="serve"),
    "a/t-xr62n6mmhn.yaml": Bookkeeping(about="release", decision_for="release"),
    "a/t-yqrh9az6vd.yaml": Bookkeeping(escalation="t-x6j67vzgng"),
    "a/t-zu2x5qmyd3.yaml": Bookkeeping(about="t-7ppb6f23xx", hire_for="qa-1"),
    "b/t-38bn4pwny9.yaml": Bookkeeping(subtasks=("t-pcau2mvfdh", "t-45ea9mxuwa", "t-kbicw7nkbs")),
    "b/t-jkdmiz5kw7.yaml": Bookkeeping(hire=QA_HIRE, about="t-7ppb6f23xx",
                                       applied="hired qa-1 (qa-engineer)"),
    "b/t-rdm4f4898n.yaml": Bookkeeping(about="serve", answers="serve", routed_to="ea"),
    "b/t-yqrh9az6vd.yaml": Bookkeeping(folded_into="t-cxv6y7gpue"),
    "c/t-hand0ver2a.yaml": Bookkeeping(handoff_from="eng-1"),
    "c/t-pq4r8s2kzm.yaml": Bookkeeping(routed_to="eng-1", preempted_by="t-urgent1x2y",
                                       resuming=True,
                                       session="9d545b12-7a52-4462-a99b-0e75a7b29416"),
}

# fields added after 0.1.0, so in no fixture file: a plan choice and its choice task
LATER = (Bookkeeping(subtasks=("t-pcau2mvfdh",), plan_choice="t-45ea9mxuwa"),
         Bookkeeping(about="t-38bn4pwny9", choice_for="t-38bn4pwny9"))


def load(path: Path) -> Task:
    task = parse_task_bytes(path.read_bytes(), f"tasks/{path.name}")
    assert isinstance(task, Task), task
    return task


def test_the_fixture_is_the_one_described() -> None:
    assert [str(p.relative_to(FIXTURE)) for p in FILES] == sorted(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIXTURE)))
def test_a_task_written_by_0_1_0_loads_typed_and_is_written_back_the_same(path: Path) -> None:
    data = path.read_bytes()
    task = load(path)
    assert task.bookkeeping == EXPECTED[str(path.relative_to(FIXTURE))]
    assert task.bookkeeping.other == ()
    assert task.to_dict() == yamlio.load(data)
    assert yamlio.dump(task.to_dict()) == data  # byte for byte: no diff when rewritten


def test_the_fixture_sets_every_bookkeeping_field() -> None:
    names = {f.name for f in dataclasses.fields(Bookkeeping)} - {"other"}
    set_somewhere = {name for book in (*EXPECTED.values(), *LATER) for name in names
                     if getattr(book, name) not in (None, ())}
    assert set_somewhere == names
    for book in LATER:
        assert Bookkeeping.from_dict(book.to_dict()) == book


def test_the_task_schema_describes_every_key_written() -> None:
    schema = json.loads((ROOT / "schemas" / "task.schema.json").read_text())
    extra = schema["properties"]["extra"]
    validator = jsonschema.Draft202012Validator(extra)
    keys: set[str] = set()
    for path in FILES:
        written = load(path).to_dict()["extra"]
        assert list(validator.iter_errors(written)) == [], path.name
        keys |= set(written)
    for book in LATER:
        assert list(validator.iter_errors(book.to_dict())) == []
        keys |= set(book.to_dict())
    assert set(extra["properties"]) == keys  # the fixture has every key (test above)


def test_unknown_keys_and_values_of_another_type_are_kept() -> None:
    raw = {"a-later-key": {"x": [1, 2]}, "escalation": {"task": "t-abc"}, "subtasks": [],
           "daily": "yes", "hire": {"talent": "qa", "salary": 3}, "about": "t-1"}
    book = Bookkeeping.from_dict(raw)
    assert book.about == "t-1"
    assert book.escalation is None and book.subtasks == () and book.daily is None
    assert book.hire is None
    assert book.to_dict() == {"about": "t-1", **{k: v for k, v in raw.items() if k != "about"}}
    # a value aoi sets wins over the unreadable one it kept
    assert dataclasses.replace(book, escalation="t-h").to_dict()["escalation"] == "t-h"


def test_a_task_without_bookkeeping_writes_no_extra() -> None:
    task = Task.from_dict({"title": "x", "extra": {}})
    assert task.bookkeeping is NO_BOOKKEEPING and "extra" not in task.to_dict()
    with pytest.raises(ValueError, match="extra must be a mapping"):
        Task.from_dict({"title": "x", "extra": ["escalation"]})


def test_bookkeeping_survives_the_parsed_task_cache(org_dir: Path) -> None:
    """The fixture's tasks committed into an org load the same from git and from the cache,
    and a cache written before the typed bookkeeping is not read."""
    for path in sorted(FIXTURE.glob("a/*.yaml")):
        (org_dir / "tasks" / path.name).write_bytes(path.read_bytes())
    subprocess.run(["git", "-C", str(org_dir), "add", "tasks"], check=True)
    subprocess.run(["git", "-C", str(org_dir), "commit", "-qm", "tasks of 0.1.0",
                    "--no-verify"], check=True)  # a snapshot: their employees are not here
    cold = Store(org_dir).load_tasks().tasks
    assert {tid: t.bookkeeping for tid, t in cold.items()} == {
        Path(name).stem: book for name, book in EXPECTED.items() if name.startswith("a/")}
    first = Store(org_dir)
    first.load_tasks()
    first.save_cache()
    warm = Store(org_dir).load_tasks().tasks
    assert warm == cold
    assert all(t.to_dict() == cold[tid].to_dict() for tid, t in warm.items())

    cache = org_dir / ".aoi" / "cache" / "tasks.pickle"
    with open(cache, "rb") as fh:
        header = pickle.load(fh)
        body = fh.read()
    with open(cache, "wb") as fh:  # the header of the release before: its pickles hold `extra`
        pickle.dump({**header, "version": 4}, fh)
        fh.write(body)
    stale = Store(org_dir)
    assert stale.load_tasks().tasks == cold
    stale.save_cache()  # only writes what it parsed: nothing, had it used the old cache
    with open(cache, "rb") as fh:
        assert pickle.load(fh)["version"] == CACHE_VERSION > 4


def test_a_record_pickles_with_only_the_fields_set() -> None:
    book = dataclasses.replace(EXPECTED["b/t-jkdmiz5kw7.yaml"], daily=False,
                               other=(("later", [1]),))
    again = pickle.loads(pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL))
    assert again == book and again.to_dict() == book.to_dict() and again.escalation is None
    assert pickle.loads(pickle.dumps(NO_BOOKKEEPING)) == NO_BOOKKEEPING
