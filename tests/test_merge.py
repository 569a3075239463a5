"""The task-file merge driver: the merge rules, their properties, and real `git pull`s."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aoi_git.domain.bookkeeping import Bookkeeping
from aoi_git.domain.model import LIFECYCLE_ORDER, Status, Task
from aoi_git.errors import AoiError
from aoi_git.store.clone_setup import (
    GITATTRIBUTES_LINE,
    HOOK_MARKER,
    install_hooks,
    install_merge_driver,
)
from aoi_git.store.task_merge import (
    ATTENTION_LINE,
    MergeOutcome,
    merge_task_texts,
    run_merge_driver,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
GIT_MARKERS = ("<<<<<<<", "=======", ">>>>>>>")


def dump(doc: Mapping[str, Any]) -> bytes:
    return yaml.dump(
        dict(doc), Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True
    ).encode()


def load(text: bytes) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader)


def merge(
    base: Mapping[str, Any] | None,
    ours: Mapping[str, Any],
    theirs: Mapping[str, Any],
    *,
    ours_is_later: bool = False,
) -> dict[str, Any]:
    outcome = merge_task_texts(
        None if base is None else dump(base), dump(ours), dump(theirs), ours_is_later=ours_is_later
    )
    doc = load(outcome.text)
    assert isinstance(doc, dict)
    return doc


BASE: dict[str, Any] = {
    "id": "t-abc",
    "title": "Build the login API",
    "description": "First line.\nSecond line.\n",
    "status": "pending",
    "assignee": "eng-1",
    "priority": 0,
    "labels": ["api"],
    "depends_on": ["t-dep1"],
    "feedback": [],
    "attempts": 0,
    "review_rounds": 0,
    "budget": {"usd": 2.0, "tokens": 400000},
    "cost": {"input_tokens": 0, "output_tokens": 0, "usd": 0.0},
}


def edited(**changes: Any) -> dict[str, Any]:
    doc = {k: (list(v) if isinstance(v, list) else v) for k, v in BASE.items()}
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_DROP = object()


# --------------------------------------------------------------------------- unit rules


@pytest.mark.parametrize("later", [True, False])
def test_field_changed_on_one_side_takes_that_side(later: bool) -> None:
    assert merge(BASE, edited(priority=5), BASE, ours_is_later=later)["priority"] == 5
    assert merge(BASE, BASE, edited(priority=7), ours_is_later=later)["priority"] == 7
    assert merge(BASE, BASE, edited(assignee="eng-2"), ours_is_later=later)["assignee"] == "eng-2"


def test_field_changed_on_both_sides_to_the_same_value() -> None:
    doc = merge(BASE, edited(priority=3, title="New"), edited(priority=3, title="New"))
    assert doc["priority"] == 3
    assert doc["title"] == "New"


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ("processing", "completed", "completed"),
        ("completed", "processing", "completed"),
        ("failed", "processing", "processing"),
        ("finished", "cancelled", "cancelled"),
        ("cancelled", "accepted", "cancelled"),
        ("blocked", "waiting", "waiting"),
    ],
)
@pytest.mark.parametrize("later", [True, False])
def test_status_changed_on_both_sides_takes_the_later_state(
    ours: str, theirs: str, expected: str, later: bool
) -> None:
    doc = merge(BASE, edited(status=ours), edited(status=theirs), ours_is_later=later)
    assert doc["status"] == expected


def test_cancelled_is_last_in_lifecycle_order() -> None:
    assert max(LIFECYCLE_ORDER, key=LIFECYCLE_ORDER.__getitem__) is Status.CANCELLED


def test_status_moved_back_on_one_side_only_is_kept() -> None:
    base = edited(status="completed")
    rejected = edited(status="pending", review_rounds=1)
    assert merge(base, rejected, edited(status="completed", priority=2))["status"] == "pending"


def test_unknown_status_values_fall_back_to_the_later_writer() -> None:
    assert merge(BASE, edited(status="weird"), edited(status="odd"))["status"] == "odd"
    assert (
        merge(BASE, edited(status="weird"), edited(status="odd"), ours_is_later=True)["status"]
        == "weird"
    )


def test_lists_union_in_base_then_ours_then_theirs_order() -> None:
    base = edited(labels=["a", "b"])
    ours = edited(labels=["a", "b", "c", "x"])
    theirs = edited(labels=["d", "a", "b", "x"])
    assert merge(base, ours, theirs)["labels"] == ["a", "b", "c", "x", "d"]
    deps = merge(BASE, edited(depends_on=["t-dep1", "t-o"]), edited(depends_on=["t-dep1", "t-t"]))
    assert deps["depends_on"] == ["t-dep1", "t-o", "t-t"]


def test_list_element_removed_on_one_side_stays_removed() -> None:
    base = edited(labels=["a", "b"])
    doc = merge(base, edited(labels=["b"]), edited(labels=["a", "b", "c"]))
    assert doc["labels"] == ["b", "c"]
    # Removed on one side with the other side untouched: the removal is the change.
    assert merge(base, edited(labels=["a"]), base)["labels"] == ["a"]


def test_feedback_dicts_compare_by_value() -> None:
    shared = {"by": "coo", "text": "add tests"}
    ours = edited(feedback=[shared, {"by": "ceo", "text": "ours"}])
    theirs = edited(feedback=[{"text": "add tests", "by": "coo"}, "plain theirs"])
    doc = merge(BASE, ours, theirs)
    assert doc["feedback"] == [shared, {"by": "ceo", "text": "ours"}, "plain theirs"]


def test_counters_take_the_maximum() -> None:
    doc = merge(
        BASE,
        edited(attempts=2, review_rounds=1),
        edited(attempts=1, review_rounds=3),
        ours_is_later=True,
    )
    assert (doc["attempts"], doc["review_rounds"]) == (2, 3)


def test_cost_takes_the_maximum_per_key() -> None:
    ours = edited(cost={"input_tokens": 500, "output_tokens": 10, "usd": 0.5, "seconds": 3.0})
    theirs = edited(cost={"input_tokens": 400, "output_tokens": 90, "usd": 0.25})
    doc = merge(BASE, ours, theirs, ours_is_later=False)
    assert doc["cost"] == {"input_tokens": 500, "output_tokens": 90, "usd": 0.5, "seconds": 3.0}


@pytest.mark.parametrize("later", [True, False])
def test_other_scalars_take_the_later_writer(later: bool) -> None:
    doc = merge(
        BASE,
        edited(assignee="eng-ours", priority=1, retry_at="2030-01-01"),
        edited(assignee="eng-theirs", priority=2, retry_at="2031-01-01"),
        ours_is_later=later,
    )
    if later:
        assert (doc["assignee"], doc["priority"], doc["retry_at"]) == ("eng-ours", 1, "2030-01-01")
    else:
        assert (doc["assignee"], doc["priority"], doc["retry_at"]) == (
            "eng-theirs",
            2,
            "2031-01-01",
        )


@pytest.mark.parametrize("name", ["title", "description", "question", "answer"])
def test_free_text_edited_twice_keeps_both_for_a_person(name: str) -> None:
    base = edited(**{name: "original text"})
    outcome = merge_task_texts(
        dump(base),
        dump(edited(**{name: "ours text\nsecond line\n"})),
        dump(edited(**{name: "theirs text"})),
        ours_is_later=True,
    )
    assert isinstance(outcome, MergeOutcome)
    assert outcome.needs_attention == [name]
    assert outcome.clean is False
    text = outcome.text.decode()
    assert not any(marker in text for marker in GIT_MARKERS)
    value = load(outcome.text)[name]
    assert value == f"ours text\nsecond line\n\n{ATTENTION_LINE}\n\ntheirs text"
    # Multi-line text is written as a block a person can edit in place.
    assert f"{name}: |" in text


def test_free_text_cleared_on_one_side_and_rewritten_on_the_other_keeps_the_text() -> None:
    base = edited(answer="draft")
    doc = merge(base, edited(answer=None), edited(answer="final answer"), ours_is_later=True)
    assert doc["answer"] == "final answer"


def test_clean_merge_has_no_attention() -> None:
    outcome = merge_task_texts(
        dump(BASE), dump(edited(priority=1)), dump(edited(labels=["api", "x"])), ours_is_later=True
    )
    assert outcome.clean is True
    assert outcome.needs_attention == []


def test_nested_mappings_merge_recursively() -> None:
    base = edited(result={"summary": "s0", "branch": "aoi/t-abc", "commit": "c0"})
    ours = edited(
        result={"summary": "s0", "branch": "aoi/t-abc", "commit": "c1"},
        budget={"usd": 5.0, "tokens": 400000},
    )
    theirs = edited(
        result={"summary": "s2", "branch": "aoi/t-abc", "commit": "c0", "extra": 1},
        budget={"usd": 2.0, "tokens": 9, "timeout_s": 60},
    )
    doc = merge(base, ours, theirs)
    assert doc["result"] == {"summary": "s2", "branch": "aoi/t-abc", "commit": "c1", "extra": 1}
    assert doc["budget"] == {"usd": 5.0, "tokens": 9, "timeout_s": 60}


def test_bookkeeping_merges_key_by_key_and_loads_typed() -> None:
    """Both sides noted something on the task (`extra:`): each key merges on its own."""
    base = edited(extra={"subtasks": ["t-1"], "review_task": "t-r"})
    ours = edited(extra={"subtasks": ["t-1", "t-2"], "review_task": "t-r", "escalation": "t-h"})
    theirs = edited(extra={"subtasks": ["t-1", "t-3"], "routed_to": "eng-1"})
    doc = merge(base, ours, theirs)
    book = Task.from_dict(doc).bookkeeping
    assert book == Bookkeeping(subtasks=("t-1", "t-2", "t-3"), escalation="t-h",
                               routed_to="eng-1")


def test_mapping_added_on_both_sides_without_base_merges() -> None:
    doc = merge(BASE, edited(result={"summary": "a"}), edited(result={"commit": "c"}))
    assert doc["result"] == {"summary": "a", "commit": "c"}


def test_key_removed_on_one_side_and_unchanged_on_the_other_is_removed() -> None:
    base = edited(retry_at="2030-01-01T00:00:00Z", question="why?")
    doc = merge(
        base,
        edited(retry_at=_DROP, question="why?"),
        edited(retry_at="2030-01-01T00:00:00Z", question=_DROP),
    )
    assert "retry_at" not in doc
    assert "question" not in doc


def test_key_removed_on_one_side_and_changed_on_the_other_keeps_the_change() -> None:
    base = edited(retry_at="2030-01-01")
    doc = merge(base, edited(retry_at=_DROP), edited(retry_at="2031-01-01"), ours_is_later=True)
    assert doc["retry_at"] == "2031-01-01"


def test_key_order_is_ours_then_new_keys() -> None:
    ours = {"title": "T", "id": "t-abc", "status": "pending", "a": 1}
    theirs = {"id": "t-abc", "z": 1, "title": "T", "status": "pending", "b": 2}
    outcome = merge_task_texts(
        dump({"id": "t-abc", "title": "T"}), dump(ours), dump(theirs), ours_is_later=False
    )
    assert list(load(outcome.text)) == ["title", "id", "status", "a", "z", "b"]


def test_no_common_ancestor() -> None:
    ours = edited(labels=["x"], priority=1)
    theirs = edited(labels=["y"], priority=2)
    for base in (None, b""):
        outcome = merge_task_texts(base, dump(ours), dump(theirs), ours_is_later=True)
        doc = load(outcome.text)
        assert doc["labels"] == ["x", "y"]
        assert doc["priority"] == 1


def test_true_is_not_one() -> None:
    doc = merge({"id": "t", "flag": 1}, {"id": "t", "flag": True}, {"id": "t", "flag": 1})
    assert doc["flag"] is True


def test_output_format() -> None:
    outcome = merge_task_texts(
        dump(BASE), dump(edited(title="héllo")), dump(BASE), ours_is_later=False
    )
    text = outcome.text.decode("utf-8")
    assert "title: héllo\n" in text
    assert "labels:\n- api\n" in text  # block style, not flow style
    assert text.startswith("id: t-abc\ntitle:")


@pytest.mark.parametrize(
    ("side", "bad"),
    [
        ("ours", b"id: [unclosed\n"),
        ("theirs", b"- a list\n- not a mapping\n"),
        ("ours", b""),
        ("base", b"just a string\n"),
        ("theirs", b"\xff\xfe\x00garbage"),
    ],
)
def test_unparseable_side_raises_aoi_error(side: str, bad: bytes) -> None:
    texts = {"base": dump(BASE), "ours": dump(BASE), "theirs": dump(BASE), side: bad}
    with pytest.raises(AoiError, match=side):
        merge_task_texts(texts["base"], texts["ours"], texts["theirs"], ours_is_later=False)


# --------------------------------------------------------------------------- properties

ALLOWED_MOVES: dict[str, list[str]] = {
    "pending": ["processing", "cancelled"],
    "processing": ["completed", "waiting", "blocked", "failed", "suspended", "cancelled"],
    "suspended": ["processing", "pending", "cancelled"],
    "waiting": ["completed", "failed", "cancelled"],
    "blocked": ["pending", "cancelled"],
    "completed": ["accepted", "pending", "cancelled"],
    "accepted": ["finished", "cancelled"],
    "failed": ["pending", "cancelled"],
    "finished": [],
    "cancelled": [],
}
LIST_FIELDS = ("labels", "depends_on", "feedback")

words = st.text(alphabet="abcdefghijklmnop-", min_size=1, max_size=8)
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
feedback_items = st.one_of(
    texts, st.fixed_dictionaries({"by": words, "text": texts, "round": st.integers(0, 5)})
)
base_tasks = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"t-[a-z0-9]{6}", fullmatch=True),
        "title": texts.filter(bool),
        "status": st.sampled_from([s.value for s in Status]),
        "assignee": words,
        "priority": st.integers(-3, 9),
        "labels": st.lists(words, unique=True, max_size=4),
        "depends_on": st.lists(st.from_regex(r"t-[a-z0-9]{4}", fullmatch=True), max_size=3),
        "feedback": st.lists(feedback_items, max_size=3),
        "attempts": st.integers(0, 3),
        "review_rounds": st.integers(0, 3),
        "cost": st.fixed_dictionaries(
            {"input_tokens": st.integers(0, 10**6), "usd": st.floats(0, 100, allow_nan=False)}
        ),
    },
    optional={
        "description": texts,
        "budget": st.fixed_dictionaries({"usd": st.floats(0, 10), "tokens": st.integers(0, 10**6)}),
        "result": st.fixed_dictionaries({"summary": texts, "branch": words}),
    },
)


@st.composite
def edits_of(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """One side's independent edit: status moves, list additions, scalar changes."""
    doc: dict[str, Any] = {
        k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
        for k, v in base.items()
    }
    status = doc["status"]
    for _ in range(draw(st.integers(0, 3))):
        moves = ALLOWED_MOVES[status]
        if not moves:
            break
        status = draw(st.sampled_from(moves))
    doc["status"] = status
    doc["labels"] += draw(st.lists(words, max_size=3))
    doc["depends_on"] += draw(st.lists(st.from_regex(r"t-[a-z0-9]{4}", fullmatch=True), max_size=2))
    doc["feedback"] += draw(st.lists(feedback_items, max_size=2))
    if draw(st.booleans()):
        doc["priority"] = draw(st.integers(-3, 9))
    if draw(st.booleans()):
        doc["assignee"] = draw(words)
    doc["attempts"] += draw(st.integers(0, 2))
    doc["review_rounds"] += draw(st.integers(0, 2))
    if draw(st.booleans()):
        doc["cost"]["input_tokens"] += draw(st.integers(0, 1000))
        doc["cost"]["usd"] += draw(st.floats(0, 5, allow_nan=False))
    if draw(st.booleans()):
        doc["description"] = draw(texts)
    if "result" in doc and draw(st.booleans()):
        doc["result"]["summary"] = draw(texts)
    return doc


@st.composite
def merge_cases(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], bool]:
    base = draw(base_tasks)
    return base, draw(edits_of(base)), draw(edits_of(base)), draw(st.booleans())


def roundtrip(doc: Mapping[str, Any]) -> Any:
    return load(dump(doc))


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(merge_cases())
def test_property_merge_of_independent_edits(
    case: tuple[dict[str, Any], dict[str, Any], dict[str, Any], bool],
) -> None:
    base, ours, theirs, later = case
    outcome = merge_task_texts(dump(base), dump(ours), dump(theirs), ours_is_later=later)
    text = outcome.text.decode("utf-8")
    # (a) valid YAML, a mapping, still a task.
    doc = load(outcome.text)
    assert isinstance(doc, dict)
    Task.from_dict(doc)
    # (b) no git conflict markers.
    assert "<<<<<<<" not in text
    assert ">>>>>>>" not in text
    # (c) every element either side has (added or kept) is in the merge.
    for name in LIST_FIELDS:
        for item in roundtrip(ours)[name] + roundtrip(theirs)[name]:
            assert item in doc[name], (name, item)
    # (d) status: the side that moved it; if both did, the later state.
    b, o, t = base["status"], ours["status"], theirs["status"]
    if o == b:
        expected = t
    elif t in (b, o):
        expected = o
    else:
        expected = max(o, t, key=lambda s: LIFECYCLE_ORDER[Status(s)])
    assert doc["status"] == expected
    # Counters never go down.
    assert doc["attempts"] == max(ours["attempts"], theirs["attempts"])
    assert doc["review_rounds"] == max(ours["review_rounds"], theirs["review_rounds"])
    assert outcome.clean == (not outcome.needs_attention)


@PROPERTY_SETTINGS
@given(merge_cases())
def test_property_identical_sides_give_that_document(
    case: tuple[dict[str, Any], dict[str, Any], dict[str, Any], bool],
) -> None:
    base, ours, _, later = case
    # (e) ours == theirs: that document, key order included.
    outcome = merge_task_texts(dump(base), dump(ours), dump(ours), ours_is_later=later)
    assert outcome.clean
    merged = load(outcome.text)
    assert merged == roundtrip(ours)
    assert list(merged) == list(ours)


@PROPERTY_SETTINGS
@given(merge_cases())
def test_property_one_side_changed_gives_that_side(
    case: tuple[dict[str, Any], dict[str, Any], dict[str, Any], bool],
) -> None:
    base, ours, theirs, later = case
    # (f) only one side changed: that side's values.
    only_ours = merge_task_texts(dump(base), dump(ours), dump(base), ours_is_later=later)
    assert load(only_ours.text) == roundtrip(ours)
    only_theirs = merge_task_texts(dump(base), dump(base), dump(theirs), ours_is_later=later)
    assert load(only_theirs.text) == roundtrip(theirs)
    assert only_ours.clean and only_theirs.clean


@PROPERTY_SETTINGS
@given(merge_cases())
def test_property_merge_is_symmetric_except_for_order_and_writer(
    case: tuple[dict[str, Any], dict[str, Any], dict[str, Any], bool],
) -> None:
    base, ours, theirs, later = case
    forward = load(merge_task_texts(dump(base), dump(ours), dump(theirs), ours_is_later=later).text)
    backward = load(
        merge_task_texts(dump(base), dump(theirs), dump(ours), ours_is_later=not later).text
    )
    for key in set(forward) | set(backward):
        if key in LIST_FIELDS:
            assert sorted(map(repr, forward[key])) == sorted(map(repr, backward[key]))
        elif key in ("description", "title"):
            continue  # kept-both texts are written ours-first
        else:
            assert forward.get(key) == backward.get(key), key


# --------------------------------------------------------------------------- the driver


def test_run_merge_driver_writes_merged_text_into_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not a git repository: times unknown, theirs is later
    paths = {}
    for name, doc in {
        "base": BASE,
        "ours": edited(labels=["api", "o"], assignee="a-ours"),
        "theirs": edited(labels=["api", "t"], assignee="a-theirs"),
    }.items():
        paths[name] = tmp_path / f".merge_{name}"
        paths[name].write_bytes(dump(doc))
    rc = run_merge_driver(
        str(paths["base"]), str(paths["ours"]), str(paths["theirs"]), "tasks/ab/t-abc.yaml"
    )
    assert rc == 0
    doc = load(paths["ours"].read_bytes())
    assert doc["labels"] == ["api", "o", "t"]
    assert doc["assignee"] == "a-theirs"
    assert load(paths["theirs"].read_bytes())["labels"] == ["api", "t"]  # inputs untouched


def test_run_merge_driver_reports_parse_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    base, ours, theirs = (tmp_path / n for n in ("b", "o", "t"))
    base.write_bytes(dump(BASE))
    ours.write_bytes(b"id: [broken\n")
    theirs.write_bytes(dump(edited(priority=4)))
    assert run_merge_driver(str(base), str(ours), str(theirs), "tasks/t-abc.yaml") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "tasks/t-abc.yaml" in err and "ours" in err
    # Left as an ordinary text conflict for a person.
    assert b"<<<<<<< ours" in ours.read_bytes()


@pytest.mark.parametrize("module", ["aoi_git.store.task_merge", "aoi_git.merge"])
def test_module_entry_point(tmp_path: Path, module: str) -> None:
    """`aoi_git.merge` is the name that clones set up by earlier releases keep in .git/config."""
    base, ours, theirs = (tmp_path / n for n in ("b", "o", "t"))
    base.write_bytes(dump(BASE))
    ours.write_bytes(dump(edited(status="processing")))
    theirs.write_bytes(dump(edited(priority=9)))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", module, str(base), str(ours), str(theirs), "t.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = load(ours.read_bytes())
    assert (doc["status"], doc["priority"]) == ("processing", 9)
    usage = subprocess.run(
        [sys.executable, "-m", module, "x"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2


# --------------------------------------------------------------------------- real git


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2024-01-01T00:00:00+00:00")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2024-01-01T00:00:00+00:00")
    monkeypatch.setenv("GIT_MERGE_AUTOEDIT", "no")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    # The driver runs `python -m aoi_git.store.task_merge` from the clone: make the package
    # importable.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    return tmp_path


def git(
    cwd: Path, *args: str, check: bool = True, date: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"git {' '.join(args)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}"
        )
    return proc


TASK_PATH = "tasks/ab/t-abc.yaml"


def write_task(clone: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = clone / TASK_PATH
    doc = load(path.read_bytes())
    change(doc)
    path.write_bytes(dump(doc))


@pytest.fixture
def clones(git_env: Path) -> tuple[Path, Path]:
    """A bare repo and two clones sharing one committed task, the driver in both."""
    bare = git_env / "shared.git"
    git(git_env, "init", "-q", "--bare", "-b", "main", str(bare))
    one, two = git_env / "one", git_env / "two"
    git(git_env, "clone", "-q", str(bare), str(one))
    git(one, "checkout", "-q", "-b", "main")
    (one / "tasks" / "ab").mkdir(parents=True)
    (one / TASK_PATH).write_bytes(dump(BASE))
    assert install_merge_driver(one) is True
    git(one, "add", "-A")
    git(one, "commit", "-q", "-m", "aoi: t-abc created")
    git(one, "push", "-q", "-u", "origin", "main")
    git(git_env, "clone", "-q", str(bare), str(two))
    assert install_merge_driver(two) is False  # .gitattributes came with the clone
    assert git(two, "check-attr", "merge", TASK_PATH).stdout.strip().endswith("aoi-task")
    return one, two


def assert_no_markers(text: str) -> None:
    for marker in ("<<<<<<<", ">>>>>>>"):
        assert marker not in text
    assert "\n=======\n" not in text


PULL_MODES = [pytest.param("--no-rebase", id="merge"), pytest.param("--rebase", id="rebase")]


@pytest.mark.parametrize("mode", PULL_MODES)
def test_pull_merges_two_edits_of_one_task(clones: tuple[Path, Path], mode: str) -> None:
    one, two = clones

    def claim(doc: dict[str, Any]) -> None:
        doc["status"] = "processing"
        doc["labels"].append("from-one")

    def edit(doc: dict[str, Any]) -> None:
        doc["priority"] = 7
        doc["labels"].append("from-two")
        doc["description"] = "First line.\nSecond line, edited in two.\n"

    write_task(one, claim)
    git(one, "commit", "-q", "-am", "aoi: t-abc pending -> processing")
    git(one, "push", "-q")
    write_task(two, edit)
    git(two, "commit", "-q", "-am", "person edits t-abc")

    proc = git(two, "pull", mode)
    assert proc.returncode == 0
    text = (two / TASK_PATH).read_text()
    assert_no_markers(text)
    doc = load(text.encode())
    assert doc["status"] == "processing"
    assert doc["priority"] == 7
    # Ours is two's side in a merge and one's side in a rebase (two's commit is replayed).
    ours_first = ["from-two", "from-one"] if mode == "--no-rebase" else ["from-one", "from-two"]
    assert doc["labels"] == ["api", *ours_first]
    assert doc["description"] == "First line.\nSecond line, edited in two.\n"
    assert git(two, "status", "--porcelain").stdout == ""
    # The merged result is what was committed, and it can be pushed back.
    assert load(git(two, "show", f"HEAD:{TASK_PATH}").stdout.encode()) == doc
    git(two, "push", "-q")


@pytest.mark.parametrize("mode", PULL_MODES)
def test_pull_keeps_both_descriptions_for_a_person(clones: tuple[Path, Path], mode: str) -> None:
    one, two = clones
    write_task(one, lambda d: d.update(description="Written in one.\n"))
    git(one, "commit", "-q", "-am", "one edits the description")
    git(one, "push", "-q")
    write_task(two, lambda d: d.update(description="Written in two.\n"))
    git(two, "commit", "-q", "-am", "two edits the description")

    proc = git(two, "pull", mode)
    assert proc.returncode == 0, proc.stderr
    assert "description" in proc.stderr  # the driver says what needs a look
    text = (two / TASK_PATH).read_text()
    assert_no_markers(text)
    description = load(text.encode())["description"]
    assert "Written in one." in description
    assert "Written in two." in description
    assert ATTENTION_LINE in description
    Task.from_dict(load(text.encode()))
    assert git(two, "status", "--porcelain").stdout == ""
    if mode == "--no-rebase":
        parents = git(two, "log", "-1", "--format=%P").stdout.split()
        assert len(parents) == 2  # a merge commit was made


@pytest.mark.parametrize("mode", PULL_MODES)
@pytest.mark.parametrize("two_is_later", [True, False])
def test_pull_gives_scalars_to_the_later_writer(
    clones: tuple[Path, Path], mode: str, two_is_later: bool
) -> None:
    one, two = clones
    early, late = "2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"
    write_task(one, lambda d: d.update(assignee="eng-one"))
    git(one, "commit", "-q", "-am", "one reassigns", date=early if two_is_later else late)
    git(one, "push", "-q")
    write_task(two, lambda d: d.update(assignee="eng-two"))
    git(two, "commit", "-q", "-am", "two reassigns", date=late if two_is_later else early)

    git(two, "pull", mode)
    assignee = load((two / TASK_PATH).read_bytes())["assignee"]
    assert assignee == ("eng-two" if two_is_later else "eng-one")


def test_pull_with_an_unparseable_side_is_an_ordinary_conflict(clones: tuple[Path, Path]) -> None:
    one, two = clones
    (one / TASK_PATH).write_text("id: t-abc\ntitle: [broken\n")
    git(one, "commit", "-q", "-am", "broken edit")
    git(one, "push", "-q")
    write_task(two, lambda d: d.update(priority=3))
    git(two, "commit", "-q", "-am", "fine edit")

    proc = git(two, "pull", "--no-rebase", check=False)
    assert proc.returncode != 0
    assert "aoi merge" in proc.stderr and TASK_PATH in proc.stderr
    assert git(two, "status", "--porcelain").stdout.startswith(f"UU {TASK_PATH}")


# --------------------------------------------------------------------------- gitconfig


def test_install_merge_driver_config_and_attributes(git_env: Path) -> None:
    repo = git_env / "repo"
    git(git_env, "init", "-q", str(repo))
    assert install_merge_driver(repo) is True
    assert git(repo, "config", "--local", "merge.aoi-task.name").stdout.strip() == "aoi task merge"
    driver = git(repo, "config", "--local", "merge.aoi-task.driver").stdout.strip()
    assert driver.endswith(" -m aoi_git.store.task_merge %O %A %B %P")
    assert sys.executable in driver
    assert (repo / ".gitattributes").read_text() == GITATTRIBUTES_LINE + "\n"
    assert install_merge_driver(repo) is False
    assert (repo / ".gitattributes").read_text() == GITATTRIBUTES_LINE + "\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"*.png binary", b"*.png binary\n" + GITATTRIBUTES_LINE.encode() + b"\n"),
        (b"*.png binary\n\n# x\n", b"*.png binary\n\n# x\n" + GITATTRIBUTES_LINE.encode() + b"\n"),
        (b"*.png binary\r\n", b"*.png binary\r\n" + GITATTRIBUTES_LINE.encode() + b"\r\n"),
        (b"", GITATTRIBUTES_LINE.encode() + b"\n"),
        (b"# top\ntasks/**/*.yaml   merge=aoi-task\n*.md text\n", None),
    ],
)
def test_gitattributes_keeps_other_content(
    git_env: Path, before: bytes, after: bytes | None
) -> None:
    repo = git_env / "repo"
    git(git_env, "init", "-q", str(repo))
    (repo / ".gitattributes").write_bytes(before)
    assert install_merge_driver(repo) is (after is not None)
    assert (repo / ".gitattributes").read_bytes() == (before if after is None else after)


def test_install_merge_driver_in_a_linked_worktree(git_env: Path) -> None:
    repo = git_env / "repo"
    git(git_env, "init", "-q", "-b", "main", str(repo))
    git(repo, "commit", "-q", "--allow-empty", "-m", "root")
    worktree = git_env / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(worktree))
    install_merge_driver(worktree)
    assert git(repo, "config", "--local", "merge.aoi-task.name").stdout.strip() == "aoi task merge"
    assert (worktree / ".gitattributes").exists()


def test_install_merge_driver_outside_git_raises(git_env: Path) -> None:
    with pytest.raises(AoiError):
        install_merge_driver(git_env)


def _hook(text: str) -> str:
    return f"#!/bin/sh\n{HOOK_MARKER}\n{text}\n"


def test_install_hooks(git_env: Path) -> None:
    repo = git_env / "repo"
    git(git_env, "init", "-q", str(repo))
    src = git_env / "hooks-src"
    src.mkdir()
    (src / "pre-commit").write_text(_hook("echo pre-commit"))
    (src / "pre-receive").write_text(_hook("echo pre-receive"))
    (src / "README.md").write_text("not a hook")
    hooks = repo / ".git" / "hooks"

    assert install_hooks(repo, src) == []
    for name in ("pre-commit", "pre-receive"):
        installed = hooks / name
        assert installed.read_text() == (src / name).read_text()
        assert installed.stat().st_mode & stat.S_IXUSR
    assert not (hooks / "README.md").exists()
    assert install_hooks(repo, src) == []  # idempotent

    # An older aoi hook is updated; another program's hook is left alone and reported.
    (src / "pre-commit").write_text(_hook("echo pre-commit v2"))
    foreign = "#!/bin/sh\necho husky\n"
    (hooks / "pre-receive").write_text(foreign)
    warnings = install_hooks(repo, src)
    assert (hooks / "pre-commit").read_text() == _hook("echo pre-commit v2")
    assert (hooks / "pre-receive").read_text() == foreign
    assert len(warnings) == 1 and "pre-receive" in warnings[0]


def test_install_hooks_honours_core_hooks_path(git_env: Path) -> None:
    repo = git_env / "repo"
    git(git_env, "init", "-q", str(repo))
    git(repo, "config", "core.hooksPath", "githooks")
    src = git_env / "hooks-src"
    src.mkdir()
    (src / "pre-commit").write_text(_hook("exit 0"))
    assert install_hooks(repo, src) == []
    assert (repo / "githooks" / "pre-commit").stat().st_mode & stat.S_IXUSR
