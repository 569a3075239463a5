"""One org, many hosts: what a daemon does to share its org's branch with other hosts.

Each host's daemon works on its own clone and commits locally as a single daemon does;
this module keeps the clone and the shared remote together (see docs/hosts.md):

- **claims** are pushed before their agents start (`push_claims`): the remote's atomic
  ref update is the compare-and-swap; a rejected push means another host moved the
  branch first: fetch, rebuild the local commits on the new head (their transitions
  checked again, `store.remote.rebuild`) and try again; a claim another host won is
  dropped and its agent never starts;
- **other commits** (results, reviews, merges) are pushed in batches, at most one push a
  tick (`push`), and while the remote cannot be reached they wait in the clone;
- **the remote is watched** by a thread that asks for its branch's commit every
  `hosts.poll_s` (`git ls-remote`, one small request) and wakes the daemon when it moved;
- **leases**: each host renews `refs/aoi/leases/<host>` every `hosts.renew_s`, saying
  until when it lives and which tasks it holds. A host that cannot renew its lease stops
  claiming; once the lease would run out it kills its runs (before anyone may take them
  over) and, when it reaches the remote again, abandons the commits its daemon made
  meanwhile. The running tasks of a host whose lease ran out are put back to pending by
  the others (`recoverable`). A task held by another live host is left to it.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from aoi_git.domain.model import HostsConfig, Status, Task
from aoi_git.domain.task_rows import open_tasks
from aoi_git.errors import AoiError, IllegalTransition
from aoi_git.runtime.executor import Executor
from aoi_git.runtime.runs import Runs
from aoi_git.runtime.scheduler import (
    Action,
    Advance,
    ApplyDecision,
    AskBudget,
    Dispatch,
    Escalate,
    Plan,
    RequestReview,
)
from aoi_git.store import remote as rm
from aoi_git.store.org_store import Store

S = Status
CLAIM_ATTEMPTS = 4  # rejected pushes of one batch of claims before it is given up
PUSH_ATTEMPTS = 3  # of other commits, in one tick (the next tick tries again)
MAX_PUSH_WAIT = 2.0  # s: the longest other commits wait after a push for the next
MAX_SAMPLES = 100_000  # claim times kept for `.aoi/daemon/hosts.json`
HOST_ENV = "AOI_HOST_ID"


def host_id(given: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The id of this host: `given` (--host-id), else $AOI_HOST_ID, else the host name."""
    import os

    chosen = given or (env if env is not None else os.environ).get(HOST_ENV)
    if chosen:
        return rm.check_host_id(chosen)
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64].lstrip("._-")
    return name or "host"


@dataclass
class Counters:
    pushes: int = 0
    rejected: int = 0  # pushes another host's push beat
    claims: int = 0  # claims the remote took
    claims_lost: int = 0  # claims another host made first
    unreachable: int = 0
    # each claim the remote took: when, and how long after its batch was committed here
    claimed_at: list[float] = field(default_factory=list)
    claim_s: list[float] = field(default_factory=list)

    def claimed(self, n: int, began: float, now: float) -> None:
        self.claims += n
        if len(self.claim_s) < MAX_SAMPLES:
            self.claimed_at += [now] * n
            self.claim_s += [now - began] * n


class Poller:
    """A thread asking the remote for its branch's commit every `every` seconds; sets
    `moved` and wakes the daemon when it differs from `known`. Two more threads: one
    renews the lease (`renew`, every `renew_every`), one watches it run out (`watch`, a
    few times a second, no I/O), so that neither a slow remote check nor a renewal stuck
    in a push that does not answer delays the stop of the runs."""

    def __init__(self, remote: rm.Remote, every: float, wake: threading.Event,
                 renew: Callable[[], None] = lambda: None, renew_every: float = 1.0,
                 watch: Callable[[], None] = lambda: None, watch_every: float = 0.2) -> None:
        self.remote, self.every, self.wake = remote, every, wake
        self.renew, self.renew_every = renew, renew_every
        self.watch, self.watch_every = watch, watch_every
        self.known: str | None = None  # set by the daemon after each fetch or push
        self.moved = False
        self.reachable = True
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True, name="aoi-remote"),
                         threading.Thread(target=self._renew, daemon=True, name="aoi-lease"),
                         threading.Thread(target=self._watch, daemon=True,
                                          name="aoi-lease-watch")]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t.is_alive():
                t.join(self.remote.timeout + 1)

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every):
            self.renew()

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_every):
            self.watch()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            sha = self.remote.ls()
            was = self.reachable
            self.reachable = sha is not None
            if sha is not None and (sha or None) != self.known:
                self.moved = True
                self.wake.set()
            elif was != self.reachable:
                self.wake.set()


class Hosts:
    """This host's side of a multi-host org (one per daemon)."""

    def __init__(self, store: Store, cfg: HostsConfig, url: str, host: str,
                 wall: Callable[[], float], log: Callable[[str], None],
                 wake: threading.Event,
                 on_moved: Callable[[Iterable[str]], None] = lambda paths: None) -> None:
        self.store, self.cfg, self.wall, self.log = store, cfg, wall, log
        self.host = host
        self.remote = rm.Remote(store, url, host, cfg.timeout_s)
        self.poller = Poller(self.remote, cfg.poll_s, wake, self._renew_if_due,
                             min(cfg.poll_s, cfg.renew_s / 4), self._watch_lease,
                             min(0.2, self._margin() / 4))
        self._holds: frozenset[str] = frozenset()  # `claimed`, for the poller's renewals
        self.on_moved = on_moved
        self.claimed: set[str] = set()  # tasks this host claimed and still holds
        self.orphans: set[str] = set()  # held by this host's lost lease: to recover
        self.lease_until = 0.0  # local deadline of the lease (its last renewal's start)
        self.renew_at = 0.0
        self.check_at = 0.0  # next look at the others' leases
        self.lost = False  # the lease ran out while the remote could not be reached
        self.stopped_runs = False  # ... and this host stopped its runs
        self.expired = False  # the lease's thread found the lease run out
        self.kill_runs: Callable[[], None] = lambda: None  # (set by `before_tick`)
        self.reachable = False
        self.unheld_since: dict[str, float] = {}
        self.ready_since: dict[str, float] = {}  # pending tasks of other hosts' shares
        self.branches: set[str] = set()  # task branches to push (a run here ended)
        self.counters = Counters()
        self.refused_until = 0.0
        self.renew_failures = 0
        self.claiming: set[str] = set()  # claims being pushed (`push_claims`)
        self.fetched_at = 0.0  # when the last fetch that succeeded began
        self.push_s = 0.0  # how long this host's pushes take (a moving average)
        self.push_after = 0.0  # `push` waits until then (see there)

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        """Before the daemon recovers or schedules anything: fetch, take up what this host
        held (or abandon what its daemon committed, when its lease ran out meanwhile),
        renew the lease, and start watching the remote."""
        if self._fetch():
            own = self.remote.leases().get(self.host)
            if own is not None and self._take_up(own):
                self._integrate()
            else:
                if own is not None:
                    self.log(f"hosts: this host's lease ran out at {own.expires:.0f}: "
                             "what its daemon did not push is abandoned")
                    self.orphans = set(own.holds)
                self._integrate(only_people=own is not None)
                self.renew(self.wall())
            self.push(self.wall())
            head = self.store.head_commit()
            if head is not None:  # what a killed daemon's runs left on replaced history
                rm.drop_stale_task_branches(self.store, None, str(head.id))
        else:
            self.log(f"hosts: the remote {self.remote.url} cannot be reached: "
                     "nothing is claimed until it can")
            self.lost = True  # what a lease said is unknown: as if it ran out
        self.poller.known = self.remote.tracked()
        self.poller.start()

    def stop(self) -> None:
        self.poller.stop()
        if not self.lost:
            self.push_after = 0.0  # (what is left goes now)
            self.push(self.wall())
        path = self.store.aoi_dir / "daemon" / "hosts.json"  # what the benchmark reads
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps({"host": self.host, **asdict(self.counters)}))
        tmp.replace(path)

    # ----------------------------------------------------------------- state
    def may_claim(self, now: float) -> bool:
        # (not while the server's hook refuses this host's pushes: each claim would be
        # made, refused and taken back again at once)
        return self.reachable and self.poller.reachable and not self.lost \
            and self.lease_until - self._margin() > now and now >= self.refused_until

    def mine(self, task_id: str) -> bool:
        """Whether a processing task is this host's to recover at start."""
        return task_id in self.claimed

    def _margin(self) -> float:
        return min(self.cfg.renew_s, self.cfg.lease_s / 4)

    def lease_lost(self, now: float) -> bool:
        """True once, when the lease runs out locally (the remote not reached): the daemon
        then kills its runs, before another host may take their tasks over."""
        if self.expired and not self.stopped_runs:
            pass  # the lease's thread found it run out (and killed the runs already)
        elif self.lost or self.lease_until - self._margin() > now or self.renew(now):
            return False
        self.lost = self.stopped_runs = True
        self.orphans |= self.claimed
        self._hold(set())
        self.log("hosts: the lease could not be renewed in time: the runs here are stopped, "
                 "and what this host commits until it reaches the remote again is abandoned")
        return True

    def allows(self, action: Action, now: float, others: set[str]) -> bool:
        """Whether this host should act on `action` (`others`: tasks other live hosts
        hold)."""
        if isinstance(action, Dispatch):
            return self.may_claim(now)
        if self.lost:
            return False
        ids: tuple[str, ...]
        if isinstance(action, ApplyDecision):
            ids = (action.human_task_id, action.subject_id)
        elif isinstance(action, Advance | RequestReview | Escalate | AskBudget):
            ids = (action.task_id,)
        else:  # pragma: no cover
            ids = ()
        return not any(i in others for i in ids)

    def share(self, now: float) -> Callable[[str], bool]:
        """For the scheduler: whether a pending task is left to another host for now.
        The queue is shared out by a hash of the task id over the hosts whose leases live,
        so hosts seldom race for one task; a task its host has not claimed within
        `steal_after` seconds (that host is full, or gone) is anyone's."""
        hosts = sorted({h for h, lease in self.remote.leases().items()
                        if self._alive(lease)} | {self.host})
        if len(hosts) < 2:
            return lambda task_id: False
        me = hosts.index(self.host)
        seen = self.ready_since
        steal = self.steal_after

        def elsewhere(task_id: str) -> bool:
            if zlib.crc32(task_id.encode()) % len(hosts) == me:
                return False
            return now - seen.setdefault(task_id, now) < steal

        return elsewhere

    @property
    def steal_after(self) -> float:
        # a few of this host's recent pushes: on a slow server (or a loaded machine) the
        # host whose share it is takes longer to get to it, and a task stolen sooner is
        # raced for, each loser's push rejected and rebuilt
        return max(1.0, 3 * self.cfg.poll_s, 4 * self.push_s)

    def held_elsewhere(self, now: float) -> set[str]:
        """Tasks the other hosts whose leases live hold."""
        out: set[str] = set()
        for host, lease in self.remote.leases().items():
            if host != self.host and self._alive(lease):
                out |= lease.holds
        return out

    def next_wake(self, now: float) -> float | None:
        if self.lost:
            return now + self.cfg.poll_s
        wake = self.check_at
        if self._ahead():
            wake = min(wake, max(now + min(0.05, self.cfg.poll_s), self.push_after))
        return wake

    # ------------------------------------------------------------------- sync
    def sync(self, now: float) -> bool:
        """At the start of a tick: fetch when the remote moved (or to look at the leases),
        rebuild on it, renew the lease when due. True when the local branch moved."""
        if self.lost:
            return self._come_back(now)
        moved = False
        if self.poller.moved or now >= self.check_at:
            self.poller.moved = False
            if self._fetch():
                moved = self._integrate() is not None
            if now >= self.check_at:
                self.check_at = now + self.cfg.renew_s
        return moved

    def _come_back(self, now: float) -> bool:
        if not self.poller.reachable and not self.poller.moved:
            return False
        if not self._fetch():
            return False
        self.log("hosts: the remote can be reached again")
        own = self.remote.leases().get(self.host)
        if not self.stopped_runs and own is not None and self._take_up(own):
            # not reached at start, within the lease a previous daemon here renewed: its
            # commits are pushed; the tasks it held (their agents died with it) recovered
            self.orphans |= own.holds
            rebuilt = self._integrate()
        else:
            rebuilt = self._integrate(only_people=True)
        self._hold(set())
        # renewed before the lease's watch may look again: with the old deadline it would
        # take this host for lost once more
        if self.renew(self.wall()):
            self.lost = self.stopped_runs = self.expired = False
        return rebuilt is not None

    def _take_up(self, own: rm.Lease) -> bool:
        """Whether this host's lease from before (a previous daemon's, or one renewed before
        the remote was lost) is its own again: renewed, naming the tasks it held, and the
        renewal on the remote before the lease ran out. Until then no other host may take
        those tasks over; after it, another may have done so, and what the lease held is
        abandoned (the caller's part)."""
        if own.expires <= self.wall():
            return False
        self._hold(set(own.holds))
        if self.renew(self.wall()) and self.wall() < own.expires:
            return True
        self._hold(set())
        return False

    def _alive(self, lease: rm.Lease) -> bool:
        """Whether a lease, as last fetched, had not run out when it was fetched: what a
        fetch long ago says is judged by that fetch's time, never by the clock now."""
        return lease.expires + self._margin() > self.fetched_at

    def _fetch(self) -> bool:
        began = self.wall()
        ok = self.remote.fetch()
        self.reachable = ok
        if ok:
            self.fetched_at = began
            self.poller.known = self.remote.tracked()
            heads = rm.adopt_task_branches(self.store, self.remote.task_branches(),
                                           skip=sorted(self.claimed))
            if heads:
                self.log(f"hosts: took the work branches of {', '.join(heads[:5])}"
                         + (f" and {len(heads) - 5} more" if len(heads) > 5 else ""))
        else:
            self.counters.unreachable += 1
        return ok

    def _ahead(self) -> bool:
        head = self.store.head_commit()
        return head is not None and str(head.id) != self.remote.tracked()

    def _integrate(self, *, only_people: bool = False,
                   drop: Iterable[str] = ()) -> rm.Rebuilt | None:
        """Rebuild the local commits on the remote's branch (as last fetched) and move the
        local branch there; None when there was nothing to do."""
        onto = self.remote.tracked()
        head = self.store.head_commit()
        head_id = str(head.id) if head is not None else None
        drop = set(drop)
        if onto is None or head_id == onto:
            return None
        repo = self.store.repo
        if head is not None and not drop and not only_people and \
                repo.descendant_of(head.id, repo[onto].id):
            return None  # only ahead: the next push takes it
        rebuilt = rm.rebuild(self.store, onto, keep_only_people=only_people, drop_claims=drop)
        for line in rebuilt.dropped:
            self.log(f"hosts: left out {line}")
        if rebuilt.head is None or rebuilt.head == head_id:
            return None
        if not self.store.move_head(head_id, rebuilt.head, rebuilt.paths):
            return None  # a person committed here meanwhile: the next tick tries again
        self.on_moved(rebuilt.paths)
        rm.drop_stale_task_branches(self.store, head_id, rebuilt.head,
                                    sorted(self.claimed | self.claiming))
        return rebuilt

    # ----------------------------------------------------------------- pushes
    def _lease(self, now: float, holds: Iterable[str] = ()) -> str:
        lease = rm.Lease(self.host, now, now + self.cfg.lease_s, self._holds | frozenset(holds))
        return self.remote.lease_commit(lease)

    def renew(self, now: float) -> bool:
        """Push this host's lease on its own (it moves no branch: never rejected)."""
        self.renew_at = now + self.cfg.renew_s
        try:
            lease = self._lease(now)
        except AoiError as exc:
            self.log(f"hosts: lease not renewed: {exc}")
            return False
        result, why = self.remote.push(None, lease, track=False)
        if result is rm.Pushed.OK:
            self.lease_until = now + self.cfg.lease_s
            self.reachable = True
            self.renew_failures = 0
            return True
        self.reachable = result is not rm.Pushed.UNREACHABLE
        if self.renew_failures == 0:  # once, not at every try
            self.log(f"hosts: lease not renewed ({result.value}): {why}")
        self.renew_failures += 1
        self.renew_at = now + min(self.cfg.renew_s, 1.0)
        return False

    def _renew_if_due(self) -> None:
        """On the lease's thread: the lease is renewed even while the daemon's thread
        waits for a slow push."""
        now = self.wall()
        if not self.lost and now >= self.renew_at:
            self.renew(now)

    def _watch_lease(self) -> None:
        """On a thread of its own (a renewal may be stuck in a push): once the lease would
        run out (a margin before the others may take its tasks over), the runs here stop."""
        if not self.lost and self.lease_until - self._margin() <= self.wall():
            # the daemon's thread may be stuck in a slow push: the runs are killed from
            # here, before another host may take their tasks over; nothing is pushed
            # until the daemon's thread has done the rest (`lease_lost`)
            self.lost = self.expired = True
            for _ in range(3):
                try:
                    self.kill_runs()
                    break
                except RuntimeError:  # (the daemon's thread changed the runs meanwhile)
                    continue

    def _hold(self, claimed: set[str]) -> None:
        self.claimed = claimed
        self._holds = frozenset(claimed)

    def push_claims(self, ids: set[str]) -> set[str]:
        """Push the local commits with the claims of `ids` (the lease names them from now
        on, and is renewed at once); the ids whose claims the remote took. A claim
        another host made first is left out (the commits are rebuilt on its head); when
        the remote cannot be reached, the claims are taken back out of the local branch."""
        ids = set(ids)
        self.claiming = set(ids)  # their worktrees are made: their branches stay
        try:
            return self._push_claims(ids)
        finally:
            self.claiming = set()

    def _push_claims(self, ids: set[str]) -> set[str]:
        began = self.wall()
        why = "another host kept moving the branch"
        # named in the lease before the push: a renewal by the poller's thread meanwhile
        # must not say this host holds less than the claims it is pushing
        self._holds = frozenset(self.claimed | ids)
        for _ in range(CLAIM_ATTEMPTS):
            if self.lost:
                break
            if not ids:
                self._hold(set(self.claimed))
                return set()
            now = self.wall()
            result, why = self._push_head(now)
            if result is rm.Pushed.OK and self.lost:  # the lease ran out meanwhile
                self.log(f"hosts: claims of {', '.join(sorted(ids))} pushed after the lease "
                         "ran out: their agents are not started (the others recover them)")
                return set()
            if result is rm.Pushed.OK:
                self.counters.claimed(len(ids), began, self.wall())
                self._hold(self.claimed | ids)
                self.renew_at = 0.0  # the poller's next round
                return ids
            if result is not rm.Pushed.REJECTED or not self._fetch():
                why = f"{result.value}: {why}"
                break
            rebuilt = self._integrate()
            if rebuilt is not None:
                lost = ids & rebuilt.dropped_tasks
                self.counters.claims_lost += len(lost)
                ids -= lost
        self.log(f"hosts: claims of {', '.join(sorted(ids))} not pushed ({why[:300]}): "
                 "taken back")
        self._integrate(drop=ids)
        self._hold(set(self.claimed))
        return set()

    def push(self, now: float) -> None:
        """Push what the local branch has that the remote's lacks (at the end of a tick:
        every commit since the last push in one), rebuilding on a moved remote."""
        if self.lost or now < self.refused_until or now < self.push_after:
            return
        for _ in range(PUSH_ATTEMPTS):
            if not self._ahead() and not self.branches:
                return
            result, _ = self._push_head(now)
            if result is rm.Pushed.OK:
                # the commits of the next ticks wait for about one push's time and go in
                # one push (or with the next claims): each push holds the server's branch
                self.push_after = self.wall() + min(self.push_s, MAX_PUSH_WAIT)
            if result is not rm.Pushed.REJECTED or not self._fetch():
                return
            self._integrate()
            now = self.wall()
        # rejected each time: the hosts pushing at once are spread out before the next try
        self.push_after = self.wall() + random.uniform(0.5, 1.5) * min(self.push_s,
                                                                       MAX_PUSH_WAIT)

    def _push_head(self, now: float) -> tuple[rm.Pushed, str]:
        head = self.store.head_commit()
        head_id = str(head.id) if head is not None and self._ahead() else None
        local = rm.local_task_branches(self.store)
        branches = {t: local[t] for t in self.branches if t in local}
        if head is not None:  # a branch with no work of its own is not worth a push
            repo = self.store.repo
            branches = {t: tip for t, tip in branches.items()
                        if not repo.descendant_of(head.id, repo[tip].id) and tip != str(head.id)}
        self.branches &= set(branches)
        # (not the lease: the poller's thread renews it meanwhile, and a ref that moved
        # since the push began fails the whole atomic push; claims are named in it first)
        began = self.wall()
        result, why = self.remote.push(head_id, None, branches)
        self.counters.pushes += 1
        if result is not rm.Pushed.UNREACHABLE:
            took = max(0.0, self.wall() - began)
            self.push_s = took if not self.push_s else 0.7 * self.push_s + 0.3 * took
        if result is rm.Pushed.OK:
            self.poller.known = self.remote.tracked()
            self.branches -= set(branches)
        elif result is rm.Pushed.REJECTED:
            self.counters.rejected += 1
        elif result is rm.Pushed.REFUSED:
            self.refused_until = now + 60.0
            self.log(f"hosts: the remote refused the push (tried again in 60 s): {why}")
        else:
            self.reachable = False
            self.counters.unreachable += 1
        return result, why

    def ran(self, task_id: str) -> None:
        """A run of `task_id` ended here: its work branch goes with the next push."""
        self.branches.add(task_id)

    # --------------------------------------------------------------- recovery
    def recoverable(self, tasks: Mapping[str, Task], running: Iterable[str],
                    now: float) -> list[str]:
        """Processing tasks no live host holds: those of a host whose lease ran out (or
        of this host's lost lease), and any left unheld for a whole lease (e.g. claimed
        by a daemon that shared no remote)."""
        if self.lost or not self.reachable:
            return []
        leases = self.remote.leases()
        live_held: set[str] = set(self.claimed) | set(running)
        dead_held: set[str] = set(self.orphans)
        for host, lease in leases.items():
            if host == self.host:
                continue
            if self._alive(lease):
                live_held |= lease.holds
            else:
                dead_held |= lease.holds
        out: list[str] = []
        seen: set[str] = set()
        for t in open_tasks(tasks):
            if t.status is not S.PROCESSING or t.id in live_held:
                continue
            seen.add(t.id)
            since = self.unheld_since.setdefault(t.id, now)
            # held by a lease that ran out: once no live lease has named it for two
            # renewals (a host that has just claimed it again names it at once)
            if now - since >= (2 * self.cfg.renew_s if t.id in dead_held else self.cfg.lease_s):
                out.append(t.id)
        self.unheld_since = {k: v for k, v in self.unheld_since.items() if k in seen}
        self.orphans &= seen
        return out

    def lost_here(self, tasks: Mapping[str, Task], running: Iterable[str]) -> list[str]:
        """Tasks this host holds that are `processing` with no run here (a claim whose
        agent could not be started, an end of a run not recorded, a recovery that a
        rejected push took back out): no other host takes them over while this host's
        lease names them, so this host puts them back to pending itself."""
        if self.lost or not self.reachable:
            return []
        idle = self.claimed - set(running) - self.claiming
        return sorted(t for t in idle
                      if (task := tasks.get(t)) is not None and task.status is S.PROCESSING)

    def forget(self, tasks: Mapping[str, Task]) -> None:
        """Stop holding the tasks that left this host's hands (pending, finished, gone),
        once the remote says so too: until this host's commits are pushed, the remote
        still shows them `processing` by this host, and a lease that stopped naming them
        would let another host take them over (and drop the result committed here)."""
        self.ready_since = {t: at for t, at in self.ready_since.items()
                            if (task := tasks.get(t)) is not None and task.status is S.PENDING}
        if self._ahead():
            return
        kept = {t for t in self.claimed
                if (task := tasks.get(t)) is not None and task.status is not S.PENDING
                and not task.is_terminal}
        if kept != self.claimed:
            self._hold(kept)

    def status(self) -> dict[str, object]:
        return {"host": self.host, "remote": self.remote.url, "lost": self.lost,
                "reachable": self.reachable and self.poller.reachable,
                "lease_until": self.lease_until, "holds": sorted(self.claimed),
                "pushes": self.counters.pushes, "rejected": self.counters.rejected,
                "claims": self.counters.claims, "claims_lost": self.counters.claims_lost}


def open_hosts(store: Store, cfg: HostsConfig, remote: str | None, host: str | None,
               wall: Callable[[], float], log: Callable[[str], None],
               wake: threading.Event,
               on_moved: Callable[[Iterable[str]], None]) -> Hosts | None:
    """The multi-host side of a daemon, or None when no remote is named."""
    url = remote or cfg.remote
    if not url:
        return None
    if store.repo.is_bare:
        raise AoiError("a host runs on a clone with a work tree, not on a bare repository")
    return Hosts(store, cfg, url, host_id(host), wall, log, wake, on_moved)


# ------------------------------------------------------------- the daemon's tick
def before_tick(h: Hosts, ex: Executor, runs: Runs, now: float) -> None:
    """At the start of a tick: a lost lease stops the runs first; then the remote's
    commits are taken in and the tasks of hosts that are gone are put back to pending."""
    h.kill_runs = runs.kill_all
    if h.lease_lost(now):
        stop_lost_runs(h, ex, runs)
    if h.sync(now) or ex.head_moved():
        ex.refresh()
    for tid in h.recoverable(ex.org.tasks, runs.active, now):
        _requeue(h, ex, tid, "its host is gone (its lease ran out)",
                 "its host's lease ran out")
    for tid in h.lost_here(ex.org.tasks, runs.active):
        _requeue(h, ex, tid, "its run on this host is gone", "no run of it here")


def _requeue(h: Hosts, ex: Executor, tid: str, why: str, said: str) -> None:
    try:
        ex.requeue(tid, why)
    except (IllegalTransition, AoiError) as exc:
        h.log(f"{tid}: not recovered: {exc}")
        ex.refresh()
    else:
        h.log(f"{tid}: recovered to pending ({said})")


def stop_lost_runs(h: Hosts, ex: Executor, runs: Runs, wait_s: float = 10.0) -> None:
    """Kill every run and wait for them to end, recording nothing: their tasks are the
    others' to recover, and an exit noticed later must not move a task another host may
    have claimed since."""
    runs.kill_all()
    deadline = h.wall() + wait_s
    while runs.active and h.wall() < deadline:
        for a, _ in runs.exits(block=0.2):
            runs.ended(a)
            ex.workspace.remove(a.task_id)
            h.log(f"{a.task_id}: its run stopped (the lease ran out); its result, if any, "
                  "is abandoned")
    for a in list(runs.active.values()):  # (not ended in time: still never recorded)
        runs.ended(a)


def after_tick(h: Hosts, ex: Executor, now: float, next_wake: float | None) -> float | None:
    """At the end of a tick: push what it committed; when to wake for the remote."""
    h.push(now)
    if ex.head_moved():
        ex.refresh()
    h.forget(ex.org.tasks)
    mine = h.next_wake(now)
    if mine is None:
        return next_wake
    return mine if next_wake is None else min(next_wake, mine)


def filter_plan(h: Hosts, plan: Plan, now: float) -> Plan:
    """The plan without what this host leaves to others (see `Hosts.allows`)."""
    others = h.held_elsewhere(now)
    kept = [a for a in plan.actions if h.allows(a, now, others)]
    return plan if len(kept) == len(plan.actions) else replace(plan, actions=kept)
