"""Typed, immutable records of the organisation: tasks, employees, talents, org config.

Records are built from parsed YAML (`from_dict`) and written back (`to_dict`), which
omits fields still at their default so files stay as short as a person would write them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aoi_git.domain.bookkeeping import NO_BOOKKEEPING, Bookkeeping


class Status(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUSPENDED = "suspended"
    WAITING = "waiting"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    ACCEPTED = "accepted"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({Status.FINISHED, Status.CANCELLED})

# Lifecycle order, used by the merge driver ("status moves to the later state").
LIFECYCLE_ORDER: dict[Status, int] = {
    Status.PENDING: 0,
    Status.FAILED: 1,
    Status.PROCESSING: 2,
    Status.SUSPENDED: 3,
    Status.BLOCKED: 4,
    Status.WAITING: 5,
    Status.COMPLETED: 6,
    Status.ACCEPTED: 7,
    Status.FINISHED: 8,
    Status.CANCELLED: 9,
}


class Kind(str, Enum):
    WORK = "work"
    REVIEW = "review"
    HUMAN = "human"

    def __str__(self) -> str:
        return self.value


class ActorKind(str, Enum):
    AGENT = "agent"
    HUMAN = "human"
    DAEMON = "daemon"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    name: str

    @classmethod
    def parse(cls, text: str) -> Actor:
        kind, _, name = text.partition(":")
        return cls(ActorKind(kind), name)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"


EMPTY_COST: Mapping[str, float] = {
    "input_tokens": 0,
    "output_tokens": 0,
    "usd": 0.0,
    "seconds": 0.0,
}


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    title: str
    description: str = ""
    kind: Kind = Kind.WORK
    status: Status = Status.PENDING
    assignee: str | None = None
    reviewer: str | None = None
    parent: str | None = None
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    labels: tuple[str, ...] = ()
    budget: Mapping[str, float] = field(default_factory=dict)
    attempts: int = 0
    review_rounds: int = 0
    retry_at: str | None = None
    feedback: tuple[Any, ...] = ()
    question: str | None = None
    answer: str | None = None
    subject: str | None = None
    result: Mapping[str, Any] | None = None
    cost: Mapping[str, float] = field(default_factory=dict)
    created: str | None = None
    bookkeeping: Bookkeeping = NO_BOOKKEEPING  # written as `extra:`

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, default_id: str = "") -> Task:
        d = dict(data)
        return cls(
            id=str(d.get("id") or default_id),
            title=str(d.get("title") or ""),
            description=str(d.get("description") or ""),
            kind=Kind(d.get("kind") or "work"),
            status=Status(d.get("status") or "pending"),
            assignee=_opt_str(d.get("assignee")),
            reviewer=_opt_str(d.get("reviewer")),
            parent=_opt_str(d.get("parent")),
            depends_on=tuple(str(x) for x in d.get("depends_on") or ()),
            priority=int_in(d.get("priority"), "priority", -PRIORITY_MAX, PRIORITY_MAX),
            labels=tuple(str(x) for x in d.get("labels") or ()),
            budget=amounts(d.get("budget"), "budget"),
            attempts=int_in(d.get("attempts"), "attempts", 0, COUNT_MAX),
            review_rounds=int_in(d.get("review_rounds"), "review_rounds", 0, COUNT_MAX),
            retry_at=_opt_str(d.get("retry_at")),
            feedback=tuple(d.get("feedback") or ()),
            question=_opt_str(d.get("question")),
            answer=_opt_str(d.get("answer")),
            subject=_opt_str(d.get("subject")),
            result=dict(d["result"]) if d.get("result") else None,
            cost=amounts(d.get("cost"), "cost"),
            created=_opt_str(d.get("created")),
            bookkeeping=Bookkeeping.from_dict(d.get("extra")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The task as it is written to its file, fields in the order of docs/formats.md,
        defaults left out; `bookkeeping` is written as the `extra:` mapping."""
        out: dict[str, Any] = {"id": self.id, "title": self.title}
        for f in dataclasses.fields(self):
            if f.name in ("id", "title"):
                continue
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:  # pragma: no cover - every optional field has a default
                default = None
            if value == default:
                continue
            if isinstance(value, Bookkeeping):
                out["extra"] = value.to_dict()
                continue
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    def with_changes(self, **changes: Any) -> Task:
        return dataclasses.replace(self, **changes)

    def feedback_texts(self) -> list[str]:
        return [fb["text"] if isinstance(fb, Mapping) else str(fb) for fb in self.feedback]


TASK_FILE_KEYS = frozenset(
    "extra" if f.name == "bookkeeping" else f.name for f in dataclasses.fields(Task))
"""The keys a task file may have."""


class EmployeeStatus(str, Enum):
    ACTIVE = "active"
    PIP = "pip"
    OFFBOARDED = "offboarded"


@dataclass(frozen=True, slots=True)
class Backend:
    kind: str = "script"
    model: str | None = None
    command: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Backend:
        d = dict(d or {})
        kind = str(d.pop("kind", "script"))
        model = _opt_str(d.pop("model", None))
        command = d.pop("command", ()) or ()
        if isinstance(command, str):
            command = (command,)
        return cls(kind=kind, model=model, command=tuple(str(c) for c in command), options=d)

    @property
    def breaker_key(self) -> str:
        """What one circuit breaker covers: the backend kind, and the command for a backend
        that runs one (a script employee's failures pause only employees running the same
        command)."""
        if not self.command:
            return self.kind
        return f"{self.kind}: " + " ".join(self.command)


@dataclass(frozen=True, slots=True)
class Capacity:
    concurrency: int = 1
    usd_per_day: float | None = None
    tokens_per_task: int | None = None
    timeout_s: float = 1800.0
    memory_mb: int | None = None
    max_turns: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Capacity:
        d = d or {}
        return cls(
            concurrency=int_in(d.get("concurrency", 1), "concurrency", 0, COUNT_MAX),
            usd_per_day=_opt_amount(d.get("usd_per_day"), "usd_per_day"),
            tokens_per_task=_opt_count(d.get("tokens_per_task"), "tokens_per_task"),
            timeout_s=amount(d.get("timeout_s", 1800), "timeout_s"),
            memory_mb=_opt_count(d.get("memory_mb"), "memory_mb"),
            max_turns=_opt_count(d.get("max_turns"), "max_turns"),
        )


@dataclass(frozen=True, slots=True)
class Employee:
    id: str
    role: str
    name: str = ""
    talent: str | None = None
    reports_to: str | None = None
    status: EmployeeStatus = EmployeeStatus.ACTIVE
    backend: Backend = field(default_factory=Backend)
    capacity: Capacity = field(default_factory=Capacity)
    tools: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, default_id: str = "") -> Employee:
        return cls(
            id=str(d.get("id") or default_id),
            role=str(d.get("role") or ""),
            name=str(d.get("name") or ""),
            talent=_opt_str(d.get("talent")),
            reports_to=_opt_str(d.get("reports_to")),
            status=EmployeeStatus(d.get("status") or "active"),
            backend=Backend.from_dict(d.get("backend")),
            capacity=Capacity.from_dict(d.get("capacity")),
            tools=tuple(str(t) for t in d.get("tools") or ()),
        )

    @property
    def is_active(self) -> bool:
        return self.status is not EmployeeStatus.OFFBOARDED


@dataclass(frozen=True, slots=True)
class Talent:
    id: str
    role: str
    description: str = ""
    tags: tuple[str, ...] = ()
    backend: Mapping[str, Any] = field(default_factory=dict)
    tools: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    prompt: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, default_id: str = "", prompt: str = "") -> Talent:
        return cls(
            id=str(d.get("id") or default_id),
            role=str(d.get("role") or ""),
            description=str(d.get("description") or ""),
            tags=tuple(str(t) for t in d.get("tags") or ()),
            backend=dict(d.get("backend") or {}),
            tools=tuple(str(t) for t in d.get("tools") or ()),
            skills=tuple(str(s) for s in d.get("skills") or ()),
            prompt=prompt,
        )


@dataclass(frozen=True, slots=True)
class Human:
    id: str
    name: str = ""
    email: str = ""
    role: str = ""


@dataclass(frozen=True, slots=True)
class Limits:
    max_agents: int = 4
    max_attempts: int = 3
    max_review_rounds: int = 3
    max_depth: int = 5
    max_fanout: int = 12
    usd_per_day: float | None = None
    backoff_base_s: float = 10.0
    backoff_max_s: float = 600.0
    breaker_failures: int = 3
    breaker_cooldown_s: float = 300.0
    grace_s: float = 10.0


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """`sandbox:` of aoi.yaml: agents run confined (bubblewrap) unless `enabled` is false;
    `writable` names extra folders (absolute, or relative to the org) agents may write."""

    enabled: bool = True
    writable: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SandboxConfig:
        d = d if isinstance(d, Mapping) else {}
        return cls(enabled=d.get("enabled", True) is not False,
                   writable=tuple(str(p) for p in d.get("writable") or () if p))


@dataclass(frozen=True, slots=True)
class HostsConfig:
    """`hosts:` of aoi.yaml: one org run by daemons on several hosts over one git remote
    (see docs/hosts.md). `remote` is a URL or a remote name of the clone; None: one host."""

    remote: str | None = None
    lease_s: float = 15.0  # a host that has not renewed its lease for this long is gone
    renew_s: float = 3.0  # how often a host renews its lease
    poll_s: float = 0.5  # how often a host asks the remote whether its branch moved
    timeout_s: float = 10.0  # longest a push, fetch or remote check may take

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> HostsConfig:
        d = d if isinstance(d, Mapping) else {}
        got = {k: amount(d[k], f"hosts.{k}") for k in ("lease_s", "renew_s", "poll_s",
                                                       "timeout_s") if d.get(k) is not None}
        cfg = cls(remote=_opt_str(d.get("remote")), **got)
        if cfg.renew_s * 2 > cfg.lease_s:
            raise ValueError(f"hosts.renew_s: {cfg.renew_s:g} is more than half of "
                             f"hosts.lease_s ({cfg.lease_s:g})")
        return cfg


@dataclass(frozen=True, slots=True)
class OrgConfig:
    name: str = "org"
    ceo: str = "ceo"
    humans: Mapping[str, Human] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    base_tools: tuple[str, ...] = ("Read", "Glob", "Grep")
    gated_tools: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    workspace_repo: str = "."
    workspace_base: str | None = None
    workspace_protected: tuple[str, ...] = ()  # globs of the work product agents may not change
    commit_human_edits: bool = True
    require_person_signatures: bool = False  # signing: refuse people's unsigned pushes
    question_role: str | None = None
    router_role: str | None = "ea"  # routes unassigned work tasks (`routing.tasks`)
    external_role: str | None = "cso"  # owns work labelled `external` (`routing.external`)
    review_every: int = 3
    markets: tuple[str, ...] = ()
    sop_approval: bool = False
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    hosts: HostsConfig = field(default_factory=HostsConfig)
    # `scheduling.preempt.min_priority_gap`: None, no preemption (see domain.preemption)
    preempt_gap: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OrgConfig:
        d = d or {}
        humans: dict[str, Human] = {}
        for hid, h in (d.get("humans") or {}).items():
            h = h or {}
            humans[str(hid)] = Human(
                id=str(hid),
                name=str(h.get("name") or hid),
                email=str(h.get("email") or ""),
                role=str(h.get("role") or ""),
            )
        lim = d.get("limits") or {}
        known = {f.name for f in dataclasses.fields(Limits)}
        limits = Limits(**{k: _limit(k, v) for k, v in lim.items() if k in known})
        tools = d.get("tools") or {}
        workspace = d.get("workspace") or {}
        daemon = d.get("daemon") or {}
        routing = d.get("routing") or {}
        evolution = d.get("evolution") or {}
        return cls(
            name=str(d.get("name") or "org"),
            ceo=str(d.get("ceo") or "ceo"),
            humans=humans,
            limits=limits,
            base_tools=tuple(tools.get("base") or ("Read", "Glob", "Grep")),
            gated_tools={str(k): tuple(v or ()) for k, v in (tools.get("gated") or {}).items()},
            workspace_repo=str(workspace.get("repo") or "."),
            workspace_base=_opt_str(workspace.get("base")),
            workspace_protected=tuple(str(g) for g in workspace.get("protected") or ()),
            commit_human_edits=bool(daemon.get("commit_human_edits", True)),
            require_person_signatures=(d.get("signing") or {}).get(
                "require_person_signatures") is True,
            question_role=_opt_str(routing.get("questions")),
            router_role=_opt_str(routing.get("tasks", "ea")),
            external_role=_opt_str(routing.get("external", "cso")),
            review_every=int_in(evolution.get("review_every", 3), "review_every", 0, COUNT_MAX),
            markets=tuple(str(m) for m in d.get("markets") or ()),
            sop_approval=bool(evolution.get("sop_approval", False)),
            sandbox=SandboxConfig.from_dict(d.get("sandbox")),
            hosts=HostsConfig.from_dict(d.get("hosts")),
            preempt_gap=_preempt_gap(d.get("scheduling")),
            raw=dict(d),
        )


def _preempt_gap(scheduling: Any) -> int | None:
    """`scheduling.preempt.min_priority_gap`, or None when preemption is off."""
    preempt = scheduling.get("preempt") if isinstance(scheduling, Mapping) else None
    if not isinstance(preempt, Mapping):
        return None
    return int_in(preempt.get("min_priority_gap"), "scheduling.preempt.min_priority_gap",
                  1, 2 * PRIORITY_MAX, 1)


def _opt_str(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


# What a `from_dict` raises for a value of the wrong type or out of range.
BAD_VALUE: tuple[type[Exception], ...] = (
    TypeError, ValueError, AttributeError, KeyError, OverflowError)

# Ranges of the numbers in org files (the schemas state the same bounds).
PRIORITY_MAX = 10**9
COUNT_MAX = 10**9  # attempts, rounds, concurrency, tokens, megabytes, turns, limits
AMOUNT_MAX = 1e12  # dollars, seconds, token totals


def int_in(v: Any, name: str, lo: int, hi: int, default: int = 0) -> int:
    """`v` as an integer in lo..hi (None is `default`); ValueError naming `name` if not."""
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"{name}: {_shown(v)} is not an integer")
    try:
        n = int(v)
    except (ValueError, OverflowError):
        raise ValueError(f"{name}: {_shown(v)} is not an integer") from None
    if not lo <= n <= hi:
        raise ValueError(f"{name}: {n} is outside {lo}..{hi}")
    return n


def amount(v: Any, name: str) -> float:
    """`v` as a finite number in 0..AMOUNT_MAX; ValueError naming `name` if not."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name}: {_shown(v)} is not a number")
    if not 0 <= v <= AMOUNT_MAX:  # NaN fails this too
        raise ValueError(f"{name}: {_shown(v)} is outside 0..{AMOUNT_MAX:g}")
    return v


def amounts(v: Any, name: str) -> dict[str, float]:
    """A mapping of names to amounts (a budget, a cost); None is empty."""
    if v is None or v == {}:
        return {}
    if not isinstance(v, Mapping):
        raise ValueError(f"{name}: {_shown(v)} is not a mapping")
    return {str(k): amount(x, f"{name}.{k}") for k, x in v.items()}


def _limit(name: str, v: Any) -> Any:
    default = next(f.default for f in dataclasses.fields(Limits) if f.name == name)
    if isinstance(default, int):
        return int_in(v, f"limits.{name}", 0, COUNT_MAX, default)
    return None if v is None else amount(v, f"limits.{name}")


def _opt_count(v: Any, name: str) -> int | None:
    return None if v is None else int_in(v, name, 0, COUNT_MAX)


def _opt_amount(v: Any, name: str) -> float | None:
    return None if v is None else amount(v, name)


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:40] + "..."
