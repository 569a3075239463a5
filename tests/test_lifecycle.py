"""The one transition table (docs/lifecycle.md) and the one function that checks it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aoi_git.domain.lifecycle import TRANSITIONS, allowed, check_transition
from aoi_git.domain.model import TERMINAL, ActorKind, Kind, Status
from aoi_git.errors import IllegalTransition

A, H, D = ActorKind.AGENT, ActorKind.HUMAN, ActorKind.DAEMON
S = Status
NON_TERMINAL = [s for s in Status if s not in TERMINAL]

# docs/lifecycle.md, row by row: (from, to, who may make the move). The reviewer may be an
# agent or a person (or the daemon acting on a reviewer's recorded decision).
DOC_ROWS: list[tuple[Status, Status, frozenset[ActorKind]]] = [
    (S.PENDING, S.PROCESSING, frozenset({D})),
    (S.PROCESSING, S.COMPLETED, frozenset({A})),
    (S.PROCESSING, S.WAITING, frozenset({A})),
    (S.PROCESSING, S.BLOCKED, frozenset({A})),
    (S.PROCESSING, S.FAILED, frozenset({D})),
    (S.WAITING, S.COMPLETED, frozenset({D})),
    (S.WAITING, S.FAILED, frozenset({D})),
    (S.BLOCKED, S.PENDING, frozenset({D})),
    (S.COMPLETED, S.ACCEPTED, frozenset({A, H})),
    (S.COMPLETED, S.PENDING, frozenset({A, H})),
    (S.ACCEPTED, S.FINISHED, frozenset({D})),
    (S.FAILED, S.PENDING, frozenset({D})),
    *[(s, S.CANCELLED, frozenset({H})) for s in NON_TERMINAL],
]
# Rows reserved for machines: a person (or an agent) must be refused.
MACHINE_ONLY = [
    (S.PENDING, S.PROCESSING, D), (S.PROCESSING, S.COMPLETED, A),
    (S.PROCESSING, S.WAITING, A), (S.PROCESSING, S.BLOCKED, A),
    (S.PROCESSING, S.FAILED, D), (S.WAITING, S.COMPLETED, D), (S.WAITING, S.FAILED, D),
    (S.BLOCKED, S.PENDING, D), (S.ACCEPTED, S.FINISHED, D),
]


@pytest.mark.parametrize(("old", "new", "actors"), DOC_ROWS,
                         ids=[f"{o.value}->{n.value}" for o, n, _ in DOC_ROWS])
def test_every_documented_row_is_allowed_for_its_actor(
    old: Status, new: Status, actors: frozenset[ActorKind]
) -> None:
    assert (old, new) in TRANSITIONS
    for actor in actors:
        assert allowed(old, new, actor)
        check_transition(old, new, actor)  # does not raise


@pytest.mark.parametrize(("old", "new", "only"), MACHINE_ONLY,
                         ids=[f"{o.value}->{n.value}" for o, n, _ in MACHINE_ONLY])
def test_wrong_actor_is_refused_with_a_message_naming_who_may(
    old: Status, new: Status, only: ActorKind
) -> None:
    rule = TRANSITIONS[(old, new)]
    wrong = [a for a in ActorKind if a not in rule.actors]
    assert H in wrong, "a person must not make a machine-only transition"
    for actor in wrong:
        assert not allowed(old, new, actor)
        with pytest.raises(IllegalTransition) as info:
            check_transition(old, new, actor)
        msg = str(info.value)
        assert f"{old.value} -> {new.value}" in msg
        for who in rule.actors:
            assert who.value in msg, msg
        assert f"not by a {actor.value}" in msg
        assert "\n" not in msg


def test_agent_cannot_cancel() -> None:
    for s in NON_TERMINAL:
        with pytest.raises(IllegalTransition, match="human"):
            check_transition(s, S.CANCELLED, A)


@pytest.mark.parametrize("terminal", sorted(TERMINAL, key=lambda s: s.value))
def test_terminal_states_have_no_way_out(terminal: Status) -> None:
    assert not [k for k in TRANSITIONS if k[0] is terminal]
    for new in Status:
        for actor in ActorKind:
            for kind in Kind:
                if new is terminal:
                    assert allowed(terminal, new, actor, kind)  # staying put is no move
                    continue
                assert not allowed(terminal, new, actor, kind)
                with pytest.raises(IllegalTransition, match=r"nothing \(terminal\)"):
                    check_transition(terminal, new, actor, kind)


def test_failed_only_leaves_by_retry_or_cancel() -> None:
    outs = {new for (old, new) in TRANSITIONS if old is S.FAILED}
    assert outs == {S.PENDING, S.CANCELLED}


def test_a_new_task_starts_pending() -> None:
    for actor in ActorKind:
        check_transition(None, S.PENDING, actor)
        for s in Status:
            if s is not S.PENDING:
                with pytest.raises(IllegalTransition, match="must start as pending"):
                    check_transition(None, s, actor)


def test_person_may_finish_only_a_human_task() -> None:
    check_transition(S.PENDING, S.FINISHED, H, Kind.HUMAN)
    for kind in (Kind.WORK, Kind.REVIEW):
        with pytest.raises(IllegalTransition, match="not a legal transition"):
            check_transition(S.PENDING, S.FINISHED, H, kind)


def test_illegal_edge_lists_the_legal_ones() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(S.PENDING, S.ACCEPTED, H)
    msg = str(info.value)
    assert "pending -> accepted is not a legal transition" in msg
    assert "processing" in msg and "cancelled" in msg


statuses = st.sampled_from(list(Status))
actors = st.sampled_from(list(ActorKind))
kinds = st.sampled_from(list(Kind))


@settings(max_examples=300, deadline=None)
@given(kind=kinds, steps=st.lists(st.tuples(statuses, actors), max_size=40))
def test_random_walks_only_use_table_edges(
    kind: Kind, steps: list[tuple[Status, ActorKind]]
) -> None:
    state: Status | None = None
    check_transition(state, S.PENDING, H, kind)
    state = S.PENDING
    for new, actor in steps:
        try:
            check_transition(state, new, actor, kind)
        except IllegalTransition as exc:
            assert str(exc)
            rule = TRANSITIONS.get((state, new))
            assert new is not state
            assert rule is None or actor not in rule.actors or kind not in rule.kinds
            continue
        if new is not state:
            rule = TRANSITIONS[(state, new)]
            assert actor in rule.actors and kind in rule.kinds
            assert state not in TERMINAL
        state = new


@settings(max_examples=500, deadline=None)
@given(old=st.one_of(st.none(), statuses), new=statuses, actor=actors, kind=kinds)
def test_allowed_agrees_with_check_transition(
    old: Status | None, new: Status, actor: ActorKind, kind: Kind
) -> None:
    try:
        check_transition(old, new, actor, kind)
        ok = True
    except IllegalTransition:
        ok = False
    assert allowed(old, new, actor, kind) is ok
