"""A real org in a test's tmp_path, with the set-up and reading helpers the daemon and
organisation-loop tests share (each adds its own agents and checks)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kit import AOI_BIN, PERSON_NAME, git

from aoi_git.domain.model import Actor, ActorKind, Task
from aoi_git.org.create import init_org
from aoi_git.org.organisation import load_org
from aoi_git.org.task_ops import new_task
from aoi_git.runtime.daemon import Daemon, DaemonOptions
from aoi_git.store.org_store import Store
from aoi_git.store.txn import commit

PERSON = Actor(ActorKind.HUMAN, PERSON_NAME)


class TmpOrg:
    """`aoi init` in tmp_path/org; `shared/` (outside the org, writable from the agents'
    sandbox) holds the agents' evidence and `agents/` (inside) their scripts."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = (tmp_path / "org").resolve()
        init_org(self.root)
        self.shared = tmp_path / "shared"
        self.shared.mkdir()
        (self.root / "agents").mkdir()
        # the agents' evidence is written from inside their sandbox
        self.edit_config(lambda d: d.setdefault("sandbox", {}).update(
            writable=[str(self.shared)]))

    # -- set-up
    def config(self, **limits: Any) -> None:
        self.edit_config(lambda d: d["limits"].update(limits))

    def edit_config(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        path = self.root / "aoi.yaml"
        data = yaml.safe_load(path.read_text())
        fn(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def commit(self, message: str = "test set-up") -> None:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--no-verify", "-m", message)
        assert load_org(Store(self.root)).problems == []

    def new(self, tid: str, title: str | None = None, **fields: Any) -> str:
        """A task made by a person (eng-1's, no reviewer unless said otherwise)."""
        fields.setdefault("assignee", "eng-1")
        if fields.get("kind") != "human":
            fields.setdefault("reviewer", "none")
        store = Store(self.root)
        tasks = load_org(store).tasks
        commit(store, lambda txn: new_task(txn, tasks, title or f"Task {tid}", task_id=tid,
                                           **fields), PERSON)
        return tid

    # -- reading
    def tasks(self) -> dict[str, Task]:
        return load_org(Store(self.root)).tasks

    def task(self, tid: str) -> Task:
        return self.tasks()[tid]

    def daemon_log(self) -> str:
        path = self.root / ".aoi" / "daemon.log"
        return path.read_text() if path.exists() else ""

    def log(self, tid: str | None = None) -> list[dict[str, Any]]:
        out = self.aoi("log", *([tid] if tid else []), "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def transitions(self, tid: str) -> list[str]:
        return [tr["transition"] for row in self.log(tid) for tr in row["transitions"]
                if tr["task"] == tid]

    # -- acting
    def run(self, **opts: Any) -> Daemon:
        """`aoi daemon --until-idle` in this process (no watcher)."""
        d = Daemon(self.root, DaemonOptions(until_idle=True, watch=False, **opts))
        assert d.run() == 0
        return d

    def aoi(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AOI_BIN), "-C", str(self.root), *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
