"""A real multi-host org for the tests and the benchmark: a git server on 127.0.0.1
(`git daemon --enable=receive-pack`, the org's pre-receive hook installed), a TCP proxy
in front of it that a test can cut and restore (a partition without iptables), and hosts
that are separate clones, each with its own `aoi daemon` process, HOME and host id."""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aoi_git.org.create import init_org
from aoi_git.resources import resource_dir
from aoi_git.store.clone_setup import install_hooks
from aoi_git.store.signing import HOST_KEY_NAME

AOI_BIN = Path(sys.executable).parent / "aoi"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc.stdout


class GitServer:
    """`git daemon` serving tmp/srv/org.git, with aoi's pre-receive hook."""

    def __init__(self, base: Path) -> None:
        self.base = base / "srv"
        self.base.mkdir(parents=True)
        self.repo = self.base / "org.git"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def create(self, seed: Path) -> None:
        git(self.base, "clone", "-q", "--bare", str(seed), str(self.repo))
        install_hooks(self.repo, resource_dir("hooks"))
        for key, value in (("aoi.python", sys.executable),
                           ("receive.denyNonFastForwards", "true"),
                           ("receive.denyDeletes", "true")):
            git(self.repo, "config", key, value)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
             f"--base-path={self.base}", "--listen=127.0.0.1", f"--port={self.port}",
             "--informative-errors", str(self.base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def url(self, port: int | None = None) -> str:
        return f"git://127.0.0.1:{port or self.port}/org.git"

    def fsck(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=self.repo,
                              capture_output=True, text=True, check=False, timeout=120)


class Proxy:
    """A TCP proxy 127.0.0.1:port -> target, on one thread; `cut()` drops every
    connection and refuses new ones until `restore()`: a host cut off from the remote."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._sel = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._stop = False
        self._cmd_r, self._cmd_w = socket.socketpair()
        self._sel.register(self._cmd_r, selectors.EVENT_READ)
        self._listen()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proxy")
        self._thread.start()

    def _listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.setblocking(False)
        self._listener = s
        self._sel.register(s, selectors.EVENT_READ)

    def cut(self) -> None:
        self._cmd_w.send(b"c")

    def restore(self) -> None:
        self._cmd_w.send(b"r")

    def close(self) -> None:
        self._stop = True
        self._cmd_w.send(b"q")
        self._thread.join(5)

    def _drop_all(self) -> None:
        for a in list(self._pairs):
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(a)
            a.close()
        self._pairs.clear()

    def _run(self) -> None:
        while True:
            for key, _ in self._sel.select(1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._cmd_r:
                    for c in sock.recv(64):
                        if c == ord("c") and self._listener is not None:
                            self._sel.unregister(self._listener)
                            self._listener.close()
                            self._listener = None
                            self._drop_all()
                        elif c == ord("r") and self._listener is None:
                            self._listen()
                        elif c == ord("q"):
                            self._drop_all()
                            if self._listener is not None:
                                self._listener.close()
                            return
                    continue
                if sock is self._listener:
                    try:
                        client, _ = sock.accept()
                        upstream = socket.create_connection(("127.0.0.1", self.target), 5)
                    except OSError:
                        continue
                    for a, b in ((client, upstream), (upstream, client)):
                        a.setblocking(False)
                        self._pairs[a] = b
                        self._sel.register(a, selectors.EVENT_READ)
                    continue
                peer = self._pairs.get(sock)
                if peer is None:
                    continue
                try:
                    data = sock.recv(65536)
                    if data:
                        peer.setblocking(True)
                        peer.sendall(data)
                        peer.setblocking(False)
                        continue
                except OSError:
                    pass
                for s in (sock, peer):  # one side closed: close both
                    with contextlib.suppress(KeyError, ValueError):
                        self._sel.unregister(s)
                    self._pairs.pop(s, None)
                    s.close()


@dataclass
class Host:
    """One host: its own clone, HOME and `aoi daemon` process."""

    name: str
    dir: Path
    url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    killed_at: list[float] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.dir / "org"

    def start(self, *args: str) -> None:
        self.starts += 1
        out = open(self.dir / f"daemon-{self.starts}.out", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(AOI_BIN), "-C", str(self.root), "daemon", "--remote", self.url,
             "--host-id", self.name, *args],
            stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        out.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9 the daemon (its agents die with it)."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.killed_at.append(time.time())

    def stop(self, timeout: float = 30) -> int | None:
        if not self.alive():
            return None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            return self.proc.wait(10)

    def log(self) -> str:
        path = self.root / ".aoi" / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.dir.glob("daemon-*.out")))


def agent_script(shared: Path, seconds: float) -> str:
    """A no-op agent that leaves its own record: start, a beat every 50 ms, end."""
    return f'''\
import json, os, pathlib, time
rec = pathlib.Path({str(shared)!r}) / "records" / (
    os.environ["AOI_TASK_ID"] + "-" + pathlib.Path(os.environ["AOI_ORG_DIR"]).parent.name
    + "-" + str(os.getpid()) + "-" + str(time.time_ns()))
def note(what):
    with open(rec, "a") as fh:
        fh.write(what + " " + repr(time.time()) + "\\n")
note("start")
end = time.time() + {seconds!r}
while time.time() < end:
    time.sleep(0.05)
    note("beat")
note("end")
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text(
    json.dumps({{"outcome": "completed", "summary": "done"}}))
'''


@dataclass
class Cluster:
    base: Path
    server: GitServer
    shared: Path
    hosts: list[Host] = field(default_factory=list)
    proxies: dict[str, Proxy] = field(default_factory=dict)

    def close(self) -> None:
        for h in self.hosts:
            if h.alive():
                h.kill()
        for p in self.proxies.values():
            p.close()
        self.server.stop()


def make_org(base: Path, *, tasks: int, agent_seconds: float = 0.0, concurrency: int = 4,
             hosts_cfg: dict[str, Any] | None = None, sandbox: bool = True,
             max_agents: int = 4, command: list[str] | None = None) -> tuple[Path, Path]:
    """The seed org: one script employee running `agent_script` (or `command`), `tasks`
    pending tasks."""
    seed = base / "seed"
    init_org(seed)
    shared = base / "shared"
    (shared / "records").mkdir(parents=True)
    agent = base / "agent.py"
    agent.write_text(agent_script(shared, agent_seconds))
    cfg_path = seed / "aoi.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["limits"]["max_agents"] = max_agents
    cfg["sandbox"] = {"enabled": sandbox, "writable": [str(shared)]}
    cfg["hosts"] = hosts_cfg or {}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    folder = seed / "employees" / "eng-1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profile.yaml").write_text(yaml.safe_dump({
        "id": "eng-1", "name": "Eng", "role": "engineer", "reports_to": "ceo",
        "status": "active", "backend": {"kind": "script",
                                        "command": command or [sys.executable, str(agent)]},
        "capacity": {"concurrency": concurrency, "timeout_s": 60}}, sort_keys=False))
    for i in range(tasks):
        tid = f"t-{i:04d}"
        path = seed / "tasks" / f"{tid}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({
            "id": tid, "title": f"Task {i}", "kind": "work", "status": "pending",
            "assignee": "eng-1", "reviewer": "none", "priority": 1}, sort_keys=False))
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "--no-verify", "-m", "the org and its tasks")
    return seed, shared


def make_cluster(base: Path, n_hosts: int, seed: Path, shared: Path,
                 proxied: tuple[str, ...] = (),
                 registered: tuple[str, ...] | None = None) -> Cluster:
    """The server with `seed`, and `n_hosts` hosts h1, h2, ... as its clones, each wired by
    `aoi init` (which makes the host's own signing key in its own
    `$XDG_CONFIG_HOME/aoi/keys/`); the keys of `registered` (default: every host) are added
    to the org's `keys/allowed_signers` by the org's founder, through the server's hook, as
    docs/hosts.md says to add a host."""
    server = GitServer(base)
    server.create(seed)
    server.start()
    cluster = Cluster(base, server, shared)
    for i in range(n_hosts):
        name = f"h{i + 1}"
        hdir = base / name
        home = hdir / "home"
        home.mkdir(parents=True)
        (home / ".gitconfig").write_text(
            f"[user]\n\tname = Host {name}\n\temail = {name}@example.com\n"
            "[init]\n\tdefaultBranch = main\n")
        env = {**os.environ, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
               "XDG_CONFIG_HOME": str(home / ".config"), "AOI_HOST_ID": name,
               "GIT_TERMINAL_PROMPT": "0"}
        for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                    "GIT_COMMITTER_EMAIL"):
            env.pop(var, None)
        port = server.port
        if name in proxied:
            proxy = Proxy(server.port)
            cluster.proxies[name] = proxy
            port = proxy.port
        url = server.url(port)
        git(hdir, "clone", "-q", server.url(), "org", env=env)
        git(hdir / "org", "config", "user.name", f"Host {name}", env=env)
        aoi(hdir, "init", "org", env=env)  # this host's key, hooks, merge driver
        cluster.hosts.append(Host(name, hdir, url, env))
    register_hosts(cluster, [h for h in cluster.hosts
                             if registered is None or h.name in registered])
    return cluster


def aoi(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(AOI_BIN), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, check=False, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"aoi {' '.join(args)} exited {proc.returncode}: "
                             f"{proc.stdout}{proc.stderr}")
    return proc.stdout


def register_hosts(cluster: Cluster, hosts: list[Host]) -> None:
    """The founder (the key that made the seed, listed in it) adds each host's public key
    with `aoi keys add host:<id> <key>` in a clone of their own and pushes: the server's
    hook accepts a change of `keys/` only when a listed key signed it. The hosts then take
    the new list in (before their daemons start)."""
    if not hosts:
        return
    founder = cluster.base / "founder"
    git(cluster.base, "clone", "-q", cluster.server.url(), str(founder))
    for h in hosts:
        pub = Path(h.env["XDG_CONFIG_HOME"]) / "aoi" / "keys" / f"{HOST_KEY_NAME}.pub"
        aoi(founder, "keys", "add", f"host:{h.name}", str(pub))
    git(founder, "push", "-q", "origin", "main")
    for h in cluster.hosts:
        git(h.root, "pull", "-q", "--ff-only", "origin", "main", env=h.env)


def host_key(h: Host) -> str:
    """The public key (`ssh-ed25519 AAAA...`) in the host's own keys folder."""
    pub = Path(h.env["XDG_CONFIG_HOME"]) / "aoi" / "keys" / f"{HOST_KEY_NAME}.pub"
    return " ".join(pub.read_text().split()[:2])


def read_records(shared: Path) -> list[tuple[str, str, float, float, bool]]:
    """(task, host, start, last seen, ended) of every agent run, from its own record."""
    out = []
    for f in sorted((shared / "records").iterdir()):
        task, host = f.name[:6], f.name[7:].split("-")[0]
        lines = [ln.split() for ln in f.read_text().splitlines() if ln.strip()]
        if not lines:
            continue
        times = [float(t) for _, t in lines if _is_float(t)]
        out.append((task, host, times[0], times[-1], lines[-1][0] == "end"))
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def overlapping(records: list[tuple[str, str, float, float, bool]],
                slack: float = 0.0) -> list[str]:
    """Runs of one task that overlapped in time (on any two hosts or one)."""
    by_task: dict[str, list[tuple[float, float, str]]] = {}
    for task, host, start, last, _ in records:
        by_task.setdefault(task, []).append((start, last, host))
    bad = []
    for task, runs in by_task.items():
        runs.sort()
        for (s1, e1, h1), (s2, e2, h2) in zip(runs, runs[1:], strict=False):
            if s2 < e1 - slack:
                bad.append(f"{task}: {h1} {s1:.2f}-{e1:.2f} and {h2} {s2:.2f}-{e2:.2f}")
    return bad


def remote_tasks(server: GitServer) -> dict[str, str]:
    """Task id -> status on the server's branch."""
    out = {}
    names = git(server.repo, "ls-tree", "-r", "--name-only", "main", "tasks/").split()
    for name in names:
        if not name.endswith(".yaml"):
            continue
        data = yaml.safe_load(git(server.repo, "show", f"main:{name}"))
        out[str(data["id"])] = str(data.get("status", "pending"))
    return out


@contextlib.contextmanager
def cluster_of(base: Path, n_hosts: int, **org: Any) -> Iterator[Cluster]:
    proxied = org.pop("proxied", ())
    registered = org.pop("registered", None)
    seed, shared = make_org(base, **org)
    cluster = make_cluster(base, n_hosts, seed, shared, proxied, registered)
    try:
        yield cluster
    finally:
        cluster.close()


def clean_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
