"""One org on many hosts: clones of one real remote, pushes as the compare-and-swap.

The first tests drive the store's remote side directly (two clones of a bare repository,
real pushes and fetches); the last ones run real `aoi daemon` processes on separate
clones of a real git server (`git daemon --enable=receive-pack` on 127.0.0.1 with the
org's pre-receive hook), each with its own HOME and host id, and check the agents' own
start/end records: every task ran, none ran twice at once, the server's fsck is clean.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostkit import cluster_of, host_key, overlapping, read_records, remote_tasks
from kit import AOI_BIN, git, wait_for

from aoi_git.domain.model import (
    Actor,
    ActorKind,
    Backend,
    Capacity,
    Employee,
    HostsConfig,
    Human,
    OrgConfig,
    Status,
    Task,
)
from aoi_git.errors import AoiError
from aoi_git.org.create import init_org
from aoi_git.org.organisation import load_org
from aoi_git.org.task_ops import new_task
from aoi_git.runtime.hosts import Hosts, host_id
from aoi_git.runtime.scheduler import Advance, Dispatch, Plan, SchedState, plan
from aoi_git.store import remote as rm
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit

S = Status
DAEMON_A = Actor(ActorKind.DAEMON, "a")
DAEMON_B = Actor(ActorKind.DAEMON, "b")
PERSON = Actor(ActorKind.HUMAN, "Test Person")


# ------------------------------------------------------------------------ helpers

def two_clones(tmp_path: Path, *task_ids: str) -> tuple[Path, Path, Path]:
    seed = tmp_path / "seed"
    init_org(seed)
    store = Store(seed)
    for tid in task_ids:
        tasks = load_org(store).tasks
        commit(store, lambda txn, tid=tid, tasks=tasks: new_task(  # type: ignore[misc]
            txn, tasks, f"Task {tid}", task_id=tid, assignee="coo"), PERSON)
    bare = tmp_path / "srv.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        git(tmp_path, "clone", "-q", str(bare), str(d))
    return bare, a, b


def move(root: Path, tid: str, status: Status, actor: Actor) -> None:
    store = Store(root)
    commit(store, lambda txn: txn.move(tid, status), actor,
           load_org(store).index.paths)


def edit(root: Path, fn: Callable[[Txn], Any], actor: Actor) -> None:
    store = Store(root)
    commit(store, fn, actor, load_org(store).index.paths)


def remote_of(root: Path, bare: Path, host: str) -> rm.Remote:
    r = rm.Remote(Store(root), str(bare), host, timeout=30)
    assert r.fetch()
    return r


def status_at(root: Path, ref: str, tid: str) -> Status:
    store = Store(root)
    return load_org(store, store.view(ref)).tasks[tid].status


# ------------------------------------------------------------ the compare-and-swap

def test_a_claim_another_host_pushed_first_is_left_out(tmp_path: Path) -> None:
    bare, a, b = two_clones(tmp_path, "t-1", "t-2")
    ra, rb = remote_of(a, bare, "a"), remote_of(b, bare, "b")
    move(a, "t-1", S.PROCESSING, DAEMON_A)
    move(b, "t-1", S.PROCESSING, DAEMON_B)  # the same claim, byte for byte
    move(b, "t-2", S.PROCESSING, DAEMON_B)
    assert ra.push(str(ra.store.head_commit().id), None)[0] is rm.Pushed.OK  # type: ignore[union-attr]
    head_b = str(rb.store.head_commit().id)  # type: ignore[union-attr]
    assert rb.push(head_b, None)[0] is rm.Pushed.REJECTED  # the server's CAS
    assert rb.fetch()
    rebuilt = rm.rebuild(rb.store, rb.tracked())
    assert rebuilt.dropped_tasks == {"t-1"}
    assert len(rebuilt.dropped) == 1 and "another writer moved it first" in rebuilt.dropped[0]
    assert rebuilt.kept == 1  # the claim of t-2 is rebuilt on a's head
    assert rb.store.move_head(head_b, str(rebuilt.head), rebuilt.paths)
    assert rb.push(str(rebuilt.head), None)[0] is rm.Pushed.OK
    assert status_at(b, "HEAD", "t-1") is S.PROCESSING
    claims = [ln for ln in git(b, "log", "--format=%an|%s", "main").splitlines()
              if "pending -> processing" in ln]
    assert sorted(claims) == ["a (daemon)|aoi: t-1 pending -> processing: Task t-1",
                              "b (daemon)|aoi: t-2 pending -> processing: Task t-2"]
    assert git(b, "status", "--porcelain") == ""


def test_a_task_branch_left_on_replaced_history_is_dropped(tmp_path: Path) -> None:
    bare, a, b = two_clones(tmp_path, "t-1", "t-2")
    move(a, "t-1", S.PROCESSING, DAEMON_A)
    ra = remote_of(a, bare, "a")
    ra.push(str(ra.store.head_commit().id), None)  # type: ignore[union-attr]
    move(b, "t-2", S.PROCESSING, DAEMON_B)
    old = str(Store(b).head_commit().id)  # type: ignore[union-attr]
    git(b, "branch", "aoi/t-2", old)  # a run's branch, no work of its own
    git(b, "branch", "aoi/t-9", "HEAD~1")  # on history the remote has too: kept
    rb = remote_of(b, bare, "b")
    rebuilt = rm.rebuild(rb.store, rb.tracked())
    assert rb.store.move_head(old, str(rebuilt.head), rebuilt.paths)
    assert rm.drop_stale_task_branches(rb.store, old, str(rebuilt.head), skip=()) == ["t-2"]
    assert sorted(rm.local_task_branches(rb.store)) == ["t-9"]


def test_a_move_the_table_forbids_from_the_other_sides_status_is_left_out(
        tmp_path: Path) -> None:
    bare, a, b = two_clones(tmp_path, "t-1")
    move(a, "t-1", S.PROCESSING, DAEMON_A)
    ra = remote_of(a, bare, "a")
    ra.push(str(ra.store.head_commit().id), None)  # type: ignore[union-attr]
    rb = remote_of(b, bare, "b")
    rebuilt = rm.rebuild(rb.store, rb.tracked())
    rb.store.move_head(str(rb.store.head_commit().id), str(rebuilt.head),  # type: ignore[union-attr]
                       rebuilt.paths)
    # b's person cancels it while a's agent reports a result
    edit(b, lambda txn: txn.update("t-1", status=S.CANCELLED), PERSON)
    rb.push(str(rb.store.head_commit().id), None)  # type: ignore[union-attr]
    move(a, "t-1", S.COMPLETED, Actor(ActorKind.AGENT, "coo"))
    assert ra.push(str(ra.store.head_commit().id), None)[0] is rm.Pushed.REJECTED  # type: ignore[union-attr]
    ra.fetch()
    rebuilt = rm.rebuild(ra.store, ra.tracked())
    assert rebuilt.dropped_tasks == {"t-1"}
    assert "cancelled -> completed is not allowed" in rebuilt.dropped[0]
    assert rebuilt.head == ra.tracked()


def test_changes_to_other_fields_and_journals_are_merged(tmp_path: Path) -> None:
    bare, a, b = two_clones(tmp_path, "t-1", "t-2")
    journal = "employees/coo/journal.md"
    edit(a, lambda txn: (txn.update("t-1", priority=7),
                         txn.put_file(journal, b"# Journal\n\nfrom a\n")), PERSON)
    edit(b, lambda txn: (txn.update("t-1", description="from b"),
                         txn.put_file(journal, b"# Journal\n\nfrom b\n")), PERSON)
    ra = remote_of(a, bare, "a")
    ra.push(str(ra.store.head_commit().id), None)  # type: ignore[union-attr]
    rb = remote_of(b, bare, "b")
    rebuilt = rm.rebuild(rb.store, rb.tracked())
    assert rebuilt.dropped == [] and rebuilt.kept == 1
    store = rb.store
    view = store.view(str(rebuilt.head))
    task = load_org(store, view).tasks["t-1"]
    assert (task.priority, task.description) == (7, "from b")
    text = (view.read(journal) or b"").decode()
    assert "from a" in text and "from b" in text


def test_a_claim_taken_back_keeps_the_recovery_before_it(tmp_path: Path) -> None:
    """A claim the remote did not take is taken back with what follows it on its task,
    not with the unpushed recovery before it: the remote's stale `processing` would stay,
    held by this host, with no run anywhere."""
    bare, a, b = two_clones(tmp_path, "t-1")
    move(b, "t-1", S.PROCESSING, DAEMON_B)
    rb = remote_of(b, bare, "b")
    assert rb.push(str(rb.store.head_commit().id), None)[0] is rm.Pushed.OK  # type: ignore[union-attr]
    move(b, "t-1", S.PENDING, DAEMON_B)  # recovered after a restart (not pushed yet)
    move(b, "t-1", S.PROCESSING, DAEMON_B)  # claimed again: this push is given up
    move(b, "t-1", S.COMPLETED, Actor(ActorKind.AGENT, "coo"))
    rebuilt = rm.rebuild(rb.store, rb.tracked(), drop_claims={"t-1"})
    assert rebuilt.kept == 1 and len(rebuilt.dropped) == 2
    assert "its claim was not pushed" in rebuilt.dropped[0]
    assert status_at(b, str(rebuilt.head), "t-1") is S.PENDING


def test_a_host_holds_a_task_until_what_took_it_out_of_its_hands_is_pushed(
        tmp_path: Path) -> None:
    bare, a, _ = two_clones(tmp_path, "t-1")
    move(a, "t-1", S.PROCESSING, DAEMON_A)
    h = Hosts(Store(a), HostsConfig(), str(bare), "a", time.time, lambda msg: None,
              threading.Event())
    assert h.renew(time.time())  # (the lease: what a daemon's start does first)
    assert h.push_claims({"t-1"}) == {"t-1"}
    assert h.claimed == {"t-1"}
    # held, processing, and no run of it here: this host's to put back to pending
    assert h.lost_here(load_org(Store(a)).tasks, running=()) == ["t-1"]
    assert h.lost_here(load_org(Store(a)).tasks, running=("t-1",)) == []
    edit(a, lambda txn: txn.update("t-1", status=S.CANCELLED), PERSON)
    h.forget(load_org(Store(a)).tasks)
    assert h.claimed == {"t-1"}  # the remote still says processing: still named
    h.push(time.time())
    h.forget(load_org(Store(a)).tasks)
    assert h.claimed == set()
    assert status_at(a, "refs/aoi/remote/heads/main", "t-1") is S.CANCELLED


def test_a_host_whose_lease_ran_out_keeps_only_what_people_committed(tmp_path: Path) -> None:
    bare, a, b = two_clones(tmp_path, "t-1", "t-2")
    move(b, "t-1", S.PROCESSING, DAEMON_B)
    edit(b, lambda txn: txn.update("t-2", priority=5), PERSON)
    rb = remote_of(b, bare, "b")
    rebuilt = rm.rebuild(rb.store, rb.tracked(), keep_only_people=True)
    assert rebuilt.kept == 1 and len(rebuilt.dropped) == 1
    assert "lease expired" in rebuilt.dropped[0]
    made = rb.store.repo[rebuilt.head]
    assert made.author.name == "Test Person"  # a person's commit stays theirs
    assert status_at(b, str(rebuilt.head), "t-1") is S.PENDING


def test_leases_round_trip_and_host_ids_are_checked(tmp_path: Path) -> None:
    lease = rm.Lease("eu-1", 10.0, 25.0, frozenset({"t-1", "t-2"}))
    assert rm.Lease.parse(lease.message()) == lease
    assert rm.Lease.parse(rm.Lease("x", 1.0, 2.0).message()) == rm.Lease("x", 1.0, 2.0)
    assert rm.Lease.parse("aoi lease\n\nnonsense") is None
    assert host_id("eu-1") == "eu-1"
    assert host_id(None, env={"AOI_HOST_ID": "box.2"}) == "box.2"
    with pytest.raises(AoiError, match="host id"):
        host_id("../evil")
    bare, a, _ = two_clones(tmp_path)
    r = remote_of(a, bare, "a")
    assert r.push(None, r.lease_commit(lease))[0] is rm.Pushed.OK
    assert r.fetch() and r.leases()["a"] == lease


def test_hosts_settings_are_read_and_checked() -> None:
    assert HostsConfig.from_dict(None) == HostsConfig()
    cfg = HostsConfig.from_dict({"remote": "origin", "lease_s": 30, "renew_s": 5})
    assert (cfg.remote, cfg.lease_s, cfg.renew_s) == ("origin", 30, 5)
    with pytest.raises(ValueError, match="more than half"):
        HostsConfig.from_dict({"lease_s": 4, "renew_s": 3})
    with pytest.raises(ValueError, match="hosts.poll_s"):
        HostsConfig.from_dict({"poll_s": "soon"})


def test_a_bad_hosts_setting_is_one_line_from_the_cli(tmp_path: Path) -> None:
    org = tmp_path / "org"
    init_org(org)
    cfg = yaml.safe_load((org / "aoi.yaml").read_text())
    cfg["hosts"] = {"lease_s": 2, "renew_s": 5}
    (org / "aoi.yaml").write_text(yaml.safe_dump(cfg))
    git(org, "commit", "-qam", "hosts", "--no-verify")
    out = subprocess.run([str(AOI_BIN), "-C", str(org), "validate"], capture_output=True, text=True,
                         check=False, timeout=60)
    assert out.returncode == 1
    assert "hosts.renew_s" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    out = subprocess.run([str(AOI_BIN), "-C", str(org), "daemon", "--host-id", "../x",
                          "--until-idle"], capture_output=True, text=True, check=False,
                         timeout=60)
    assert out.returncode == 1 and "host id" in out.stderr and "Traceback" not in out.stderr


# ------------------------------------------------------- the scheduler on one of many

def _sched(tasks: list[Task], elsewhere: Callable[[str], bool] | None) -> Plan:
    cfg = OrgConfig(ceo="ceo", humans={"ceo": Human("ceo", "CEO")})
    eng = Employee(id="eng-1", role="engineer", reports_to="ceo",
                   backend=Backend(kind="script", command=("true",)),
                   capacity=Capacity(concurrency=4))
    return plan(SchedState(tasks={t.id: t for t in tasks}, employees={"eng-1": eng},
                           config=cfg, elsewhere=elsewhere), 1e9)


def test_a_task_another_host_runs_or_will_run_is_no_deadlock() -> None:
    mk = lambda tid, st: Task(id=tid, title=tid, status=st, assignee="eng-1",  # noqa: E731
                              reviewer="none")
    running_elsewhere = [mk("t-1", S.PROCESSING)]
    # one host: a processing task nothing here runs is a deadlock (its daemon recovers it
    # at start); with other hosts it is their work
    assert any(isinstance(a, Advance) and a.to is S.FAILED
               for a in _sched(running_elsewhere, None).actions)
    assert _sched(running_elsewhere, lambda tid: False).actions == []
    # a pending task in another host's share is not dispatched here, and is no deadlock
    theirs = [mk("t-2", S.PENDING), mk("t-3", S.PENDING)]
    p = _sched(theirs, lambda tid: tid == "t-2")
    assert [(a.task_id) for a in p.actions if isinstance(a, Dispatch)] == ["t-3"]
    assert _sched(theirs, lambda tid: True).actions == []


# ------------------------------------------------------------- real hosts, real server

HOSTS_CFG = {"lease_s": 20, "renew_s": 2, "poll_s": 0.5, "timeout_s": 60}


def all_terminal(tasks: dict[str, str]) -> bool:
    return bool(tasks) and all(s in ("finished", "cancelled") for s in tasks.values())


@pytest.mark.timeout(240)
def test_three_hosts_share_one_remote(tmp_path: Path) -> None:
    with cluster_of(tmp_path, 3, tasks=9, agent_seconds=0.3, hosts_cfg=HOSTS_CFG) as c:
        for h in c.hosts:
            h.start()
        try:
            wait_for(lambda: all_terminal(
                {t: s for t, s in remote_tasks(c.server).items() if t.startswith("t-0")}),
                timeout=200, interval=0.2, what="every task finished on the server")
        except AssertionError:
            raise AssertionError("\n".join(f"== {h.name}\n{h.log()[-3000:]}{h.output()[-2000:]}"
                                           for h in c.hosts)) from None
        for h in c.hosts:
            assert h.stop() == 0, h.output()
        records = read_records(c.shared)
        ran = sorted(r[0] for r in records)
        assert ran == [f"t-{i:04d}" for i in range(9)]  # each started once,
        assert all(r[4] for r in records)  # ... and ran to its end
        assert overlapping(records) == []
        fsck = c.server.fsck()
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        # every transition is on the server, once, by the host that made it
        log = git(c.server.repo, "log", "--format=%an|%s", "main")
        for i in range(9):
            tid = f"t-{i:04d}"
            claims = [ln for ln in log.splitlines() if f"{tid} pending -> processing" in ln]
            assert len(claims) == 1, log
            assert sum(f"{tid} processing -> completed" in ln for ln in log.splitlines()) == 1
        leases = git(c.server.repo, "for-each-ref", "--format=%(refname)", "refs/aoi/leases")
        assert sorted(leases.split()) == [f"refs/aoi/leases/h{i}" for i in (1, 2, 3)]


def wait_or_dump(c: Any, cond: Any, **how: Any) -> Any:
    """`wait_for(cond, **how)`; on a timeout the assertion says what the server and each
    host say (`dump`)."""
    try:
        return wait_for(cond, **how)
    except AssertionError:
        raise AssertionError(dump(c)) from None


def dump(c: Any) -> str:
    """What the server and each host say, for a failing assertion."""
    return f"{remote_tasks(c.server)}\n" + "\n".join(
        f"== {h.name}\n{h.log()[-5000:]}{h.output()[-1500:]}" for h in c.hosts)


def started_by(shared: Path, host: str) -> list[tuple[str, float]]:
    return sorted((task, start) for task, h, start, _, _ in read_records(shared) if h == host)


def transitions(server_repo: Path, tid: str, move: str) -> list[str]:
    """The authors of the server's commits that made `move` ("pending -> processing")."""
    return [ln.split("|")[0] for ln in git(server_repo, "log", "--format=%an|%s",
                                           "main").splitlines()
            if f"{tid} {move}" in ln]


CHAOS_CFG = {"lease_s": 8, "renew_s": 1, "poll_s": 0.3, "timeout_s": 20}


@pytest.mark.timeout(240)
def test_chaos_kills_and_a_partition_lose_nothing_and_run_nothing_twice(
        tmp_path: Path) -> None:
    """kill -9 hosts at random, cut one off from the remote and restore it; at the end
    every task is terminal, no task ran twice at once, no transition is lost."""
    rnd = random.Random(17)
    n = 10
    with cluster_of(tmp_path, 3, tasks=n, agent_seconds=1.0, hosts_cfg=CHAOS_CFG,
                    proxied=("h3",), max_agents=2, concurrency=2) as c:
        for h in c.hosts:
            h.start()
        begin = time.monotonic()
        cut_at: float | None = None
        restored = False
        while time.monotonic() - begin < 24:
            time.sleep(rnd.uniform(1.5, 3.5))
            victim = rnd.choice(c.hosts[:2])
            if victim.alive():
                victim.kill()
            else:
                victim.start()
            if cut_at is None and time.monotonic() - begin > 3:
                c.proxies["h3"].cut()  # h3 keeps running what it claimed, claims nothing
                cut_at = time.monotonic()
            if cut_at is not None and not restored and time.monotonic() - cut_at > 12:
                c.proxies["h3"].restore()  # past its lease: it stopped its runs
                restored = True
        c.proxies["h3"].restore()
        for h in c.hosts:
            if not h.alive():
                h.start()

        def done() -> bool:
            tasks = remote_tasks(c.server)
            return all_terminal({t: s for t, s in tasks.items() if t.startswith("t-0")})

        wait_or_dump(c, done, timeout=120, interval=0.3, what="every task terminal on the server")
        for h in c.hosts:
            h.stop()
        records = read_records(c.shared)
        assert overlapping(records) == [], (records, dump(c))
        finished = {r[0] for r in records if r[4]}
        assert finished == {f"t-{i:04d}" for i in range(n)}
        fsck = c.server.fsck()
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        log = git(c.server.repo, "log", "--format=%s", "main")
        for i in range(n):  # no transition lost: each finished task was claimed and ended
            tid = f"t-{i:04d}"
            assert any(line.startswith(f"aoi: {tid} ") and "accepted -> finished" in line
                       for line in log.splitlines())
            assert f"{tid} pending -> processing" in log
            assert f"{tid} processing -> completed" in log


@pytest.mark.timeout(400)
def test_four_hosts_racing_for_one_queue_never_start_a_task_twice(tmp_path: Path) -> None:
    """Contention: four hosts of one agent each on many short tasks, so that they steal
    from each other's shares and race for the same claims; every task starts exactly once
    (the agents' own records), and the pushes that lost a race are the CAS at work."""
    n = 8
    with cluster_of(tmp_path, 4, tasks=n, agent_seconds=0.2, hosts_cfg=HOSTS_CFG,
                    max_agents=1, concurrency=1, sandbox=False) as c:
        for h in c.hosts:
            h.start()
        wait_or_dump(c, lambda: all_terminal(
            {t: s for t, s in remote_tasks(c.server).items() if t.startswith("t-0")}),
            timeout=300, interval=0.3, what="every task finished on the server")
        for h in c.hosts:
            assert h.stop() == 0, h.output()
        records = read_records(c.shared)
        assert overlapping(records) == [], records
        starts = sorted(r[0] for r in records)
        assert starts == [f"t-{i:04d}" for i in range(n)], starts  # once each, no restart
        assert all(r[4] for r in records)
        for i in range(n):
            assert len(transitions(c.server.repo, f"t-{i:04d}", "pending -> processing")) == 1
        counters = [json.loads((h.root / ".aoi" / "daemon" / "hosts.json").read_text())
                    for h in c.hosts]
        assert sum(k["rejected"] for k in counters) > 0, counters  # they did race
        assert sum(k["claims"] for k in counters) == n, counters


PARTITION_CFG = {"lease_s": 8, "renew_s": 1, "poll_s": 0.3, "timeout_s": 20}


def _wait_running(c: Any, host: str) -> str:
    """The task `host`'s agent is running (from its record), once it runs one."""
    def found() -> str | None:
        for task, h, _, _, ended in read_records(c.shared):
            if h == host and not ended:
                return task
        return None
    return str(wait_or_dump(c, found, timeout=90, interval=0.1, what=f"an agent on {host}"))


@pytest.mark.timeout(240)
def test_a_host_cut_off_within_its_lease_claims_nothing_and_pushes_its_result_after(
        tmp_path: Path) -> None:
    with cluster_of(tmp_path, 2, tasks=4, agent_seconds=2.5, hosts_cfg=PARTITION_CFG,
                    proxied=("h2",), max_agents=1, concurrency=1) as c:
        h1, h2 = c.hosts
        h2.start()
        mine = _wait_running(c, "h2")
        c.proxies["h2"].cut()
        cut = time.time()
        h1.start()
        time.sleep(4)  # h2's run ends meanwhile; the lease (8 s) still holds
        restored = time.time()
        c.proxies["h2"].restore()
        wait_or_dump(c, lambda: all_terminal(remote_tasks(c.server)), timeout=120,
                     interval=0.3, what="every task finished")
        for h in c.hosts:
            h.stop()
        records = read_records(c.shared)
        assert overlapping(records) == [], records
        # cut off, h2 claimed nothing: no agent of its started until it was back
        assert [t for t, at in started_by(c.shared, "h2") if cut < at < restored] == []
        # what it ran while cut off ran once, and its result is the one on the server
        assert [r[1] for r in records if r[0] == mine] == ["h2"]
        assert transitions(c.server.repo, mine, "pending -> processing") == ["h2 (daemon)"]
        assert len(transitions(c.server.repo, mine, "processing -> completed")) == 1
        assert "lease expired" not in h2.log(), h2.log()
        fsck = c.server.fsck()
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr


@pytest.mark.timeout(240)
def test_a_host_cut_off_past_its_lease_stops_its_run_first_and_abandons_it(
        tmp_path: Path) -> None:
    # (the agent outlasts the lease: 8 s)
    with cluster_of(tmp_path, 2, tasks=1, agent_seconds=12, hosts_cfg=PARTITION_CFG,
                    proxied=("h2",)) as c:
        h1, h2 = c.hosts
        h2.start()
        tid = _wait_running(c, "h2")
        c.proxies["h2"].cut()
        h1.start()
        # h2 stops its run before its lease runs out; then h1 recovers the task, runs it
        wait_or_dump(c, lambda: any(r[0] == tid and r[1] == "h1" for r in read_records(c.shared)),
                     timeout=90, interval=0.2, what="h1 runs the task again")
        restored = time.time()
        c.proxies["h2"].restore()
        wait_or_dump(c, lambda: all_terminal(remote_tasks(c.server)), timeout=120,
                     interval=0.3, what="the task finished")
        for h in c.hosts:
            h.stop()
        records = read_records(c.shared)
        assert overlapping(records) == [], records
        runs = sorted((r[2], r[1], r[3], r[4]) for r in records)
        assert [(host, ended) for _, host, _, ended in runs] == [("h2", False), ("h1", True)]
        assert runs[0][2] < runs[1][0]  # h2's run was stopped before h1's began
        assert runs[0][2] < restored  # ... and before h2 reached the remote again
        assert "the runs here are stopped" in h2.log()
        assert transitions(c.server.repo, tid, "pending -> processing") == [
            "h1 (daemon)", "h2 (daemon)"]  # (newest first)
        assert len(transitions(c.server.repo, tid, "processing -> completed")) == 1
        assert "recovered to pending (its host's lease ran out)" in h1.log()
        fsck = c.server.fsck()
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr


@pytest.mark.timeout(240)
def test_a_host_restarted_after_its_lease_ran_out_abandons_what_it_had(
        tmp_path: Path) -> None:
    with cluster_of(tmp_path, 2, tasks=1, agent_seconds=4, hosts_cfg=PARTITION_CFG) as c:
        h1, h2 = c.hosts
        h2.start()
        tid = _wait_running(c, "h2")
        h2.kill()  # its agent dies with it; its lease runs out
        killed = time.time()
        h1.start()
        wait_or_dump(c, lambda: "recovered to pending (its host's lease ran out)" in h1.log(),
                     timeout=90, interval=0.2, what="h1 recovers the task")
        h2.start()
        wait_or_dump(c, lambda: all_terminal(remote_tasks(c.server)), timeout=120,
                     interval=0.3, what="the task finished")
        for h in c.hosts:
            h.stop()
        records = read_records(c.shared)
        assert overlapping(records) == [], records
        first, again = sorted(records, key=lambda r: r[2])  # (task, host, start, end, ended)
        assert first[1] == "h2" and not first[4] and first[3] <= killed + 0.5, records
        # whichever host claims the recovered task, it is a new run, after the old one
        assert again[4] and again[2] > first[3], records
        assert "this host's lease ran out" in h2.log()
        assert len(transitions(c.server.repo, tid, "processing -> completed")) == 1


@pytest.mark.timeout(240)
def test_each_host_signs_with_its_own_key_and_an_unlisted_one_is_refused(
        tmp_path: Path) -> None:
    """Every host has its own key (its own $XDG_CONFIG_HOME/aoi/keys), h1's is in the
    org's allowed signers, h2's is not: the server's hook refuses h2's daemon commits,
    so h2 claims nothing and h1 does all the work, every commit signed by h1's key."""
    with cluster_of(tmp_path, 2, tasks=3, agent_seconds=0.2, hosts_cfg=HOSTS_CFG,
                    registered=("h1",)) as c:
        h1, h2 = c.hosts
        assert host_key(h1) != host_key(h2)
        listed = git(c.server.repo, "show", "main:keys/allowed_signers")
        assert f"host:h1 namespaces=\"git\" {host_key(h1)}" in listed
        assert host_key(h2) not in listed
        h2.start()
        wait_or_dump(c, lambda: "the remote refused" in h2.log(), timeout=90, interval=0.2,
                     what="the server refuses h2's claim")
        assert "must be signed by a host key" in h2.log()
        assert set(remote_tasks(c.server).values()) == {"pending"}
        h1.start()
        wait_or_dump(c, lambda: all_terminal(remote_tasks(c.server)), timeout=150,
                     interval=0.3, what="h1 finishes every task")
        for h in c.hosts:
            h.stop()
        assert {r[1] for r in read_records(c.shared)} == {"h1"}
        # what the daemons pushed verifies against the org's list, as h1's key
        signers = tmp_path / "allowed_signers"
        signers.write_text(listed)
        daemon_commits = git(c.server.repo, "log", "--format=%H %an", "main").splitlines()
        shas = [ln.split()[0] for ln in daemon_commits if ln.endswith("(daemon)")]
        assert shas
        for sha in shas:
            out = subprocess.run(
                ["git", "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-commit", sha],
                cwd=c.server.repo, capture_output=True, text=True, check=False, timeout=60)
            assert out.returncode == 0 and "signature for host:h1 with" in out.stderr, out.stderr
