"""The box an agent runs in: bubblewrap (`bwrap`) around the agent's command, any backend.

Inside, the whole file system is visible read-only (`--ro-bind / /`) and only these are
writable: the task's worktree, its run folder (`.aoi/runs/<id>/`, with the private
temporary folder `tmp/` that TMPDIR names), the folders `sandbox.writable` of aoi.yaml
adds, and what the agent's own git needs (see `aoi_git.store.agent_git`). So the org checkout, the
repository's `.git` (hooks, config, refs, objects), other worktrees and the home folder
cannot be changed, and this host's signing key (`store.signing.keys_dir`) cannot be
read: the folder shows empty. The network is shared (a backend must reach its API).

The run is one unit that dies whole: `--unshare-pid` gives it its own pid namespace, and
`--die-with-parent` ties the namespace's first process to bwrap, so when the agent's
command ends (or bwrap is killed: a timeout, a cold stop, the daemon's death through
PR_SET_PDEATHSIG) the kernel kills every process left in the namespace, double-forked and
`setsid` ones included. Inside, the agent sees only its own processes (no daemon to signal
or ptrace).

Where the sandbox is on and bwrap is missing or fails its probe, `require` raises
`AoiError` with one line; `sandbox: {enabled: false}` in aoi.yaml runs agents unconfined.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aoi_git.domain.model import SandboxConfig
from aoi_git.errors import AoiError
from aoi_git.store import agent_git, signing

PROBE_TIMEOUT_S = 10.0
# the namespaces and mounts every run gets (the probe runs exactly these)
BASE_ARGS = ("--die-with-parent", "--unshare-pid", "--unshare-ipc",
             "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
TMP_NAMES = ("TMPDIR", "TMP", "TEMP", "TEMPDIR")


@dataclass(frozen=True)
class Box:
    """What one run may write, and the extra environment it gets, for `wrap`."""

    bwrap: str
    cwd: Path
    writable: tuple[Path, ...]
    # (source, destination) pairs bound read-write, then read-only, after `writable`
    binds: tuple[tuple[Path, Path], ...] = ()
    read_only: tuple[Path, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    hidden: tuple[Path, ...] = ()  # folders the run sees empty (this host's signing key)

    def argv(self, command: Sequence[str]) -> list[str]:
        """bwrap's command line running `command` in this box (order matters: later
        mounts cover earlier ones, so read-only files inside writable folders stay so)."""
        out = [self.bwrap, *BASE_ARGS]
        for path in dict.fromkeys(self.writable):
            out += ["--bind", str(path), str(path)]
        for src, dst in self.binds:
            out += ["--bind", str(src), str(dst)]
        for path in self.read_only:
            out += ["--ro-bind", str(path), str(path)]
        for path in self.hidden:
            out += ["--tmpfs", str(path), "--remount-ro", str(path)]
        return [*out, "--chdir", str(self.cwd), "--", *command]


def require(config: SandboxConfig) -> str | None:
    """bwrap's path where the sandbox is on; None where aoi.yaml turned it off.

    Raises AoiError (one line) where it is on and cannot be set up on this machine."""
    if not config.enabled:
        return None
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise AoiError("cannot confine agents: bwrap is not installed (install the "
                       "bubblewrap package, or set `sandbox: {enabled: false}` in aoi.yaml)")
    problem = probe(bwrap)
    if problem:
        raise AoiError(f"cannot confine agents: {bwrap} fails here ({problem}); fix it, or "
                       "set `sandbox: {enabled: false}` in aoi.yaml")
    return bwrap


@functools.cache
def probe(bwrap: str) -> str | None:
    """None when `bwrap` can set up a box on this machine (user namespaces, mounts),
    else its first line of complaint. Run once per process and bwrap."""
    try:
        proc = subprocess.run([bwrap, *BASE_ARGS, "--", "/bin/true"], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if proc.returncode == 0:
        return None
    lines = (proc.stderr or "").strip().splitlines()
    return lines[0] if lines else f"exit status {proc.returncode}"


def extra_writable(config: SandboxConfig, org_root: Path) -> tuple[Path, ...]:
    """`sandbox.writable` as absolute paths (relative ones are the org's); missing folders
    are left out (bwrap cannot bind what does not exist)."""
    out = []
    for name in config.writable:
        path = Path(name).expanduser()
        path = (path if path.is_absolute() else org_root / path).resolve()
        if path.is_dir():
            out.append(path)
    return tuple(out)


def private_tmp(run_folder: Path) -> Path:
    """The run's own temporary folder, emptied for every run."""
    tmp = run_folder / "tmp"
    agent_git.empty_folder(tmp)
    return tmp


def tmp_env(tmp: Path) -> dict[str, str]:
    return dict.fromkeys(TMP_NAMES, str(tmp))


def _hidden_keys(folders: Sequence[Path]) -> tuple[Path, ...]:
    """This host's keys folder, which the run must see empty (an agent must not sign as
    this host), unless one of the run's own folders lies inside it."""
    keys = signing.keys_dir()
    if not keys.is_dir():
        return ()
    real_keys = _real(str(keys))
    # the run's folders are made by the daemon in folders agents cannot change: their
    # parents are resolved once per process (Path.resolve is ~0.1 ms each)
    inside = any((_real(str(p.parent)) / p.name).is_relative_to(real_keys) for p in folders)
    return () if inside else (keys,)


@functools.lru_cache(maxsize=256)
def _real(path: str) -> Path:
    return Path(path).resolve()


def box_for_run(bwrap: str, worktree: Path, run_folder: Path, extra: Sequence[Path],
                tip: str | None, binds: Sequence[tuple[Path, Path]] = ()) -> Box:
    """The box of one run: its worktree at `tip` (its branch's commit before the run), its
    run folder with a fresh private tmp, `extra` folders, and its own git (`store.agent_git`).
    `binds`: (source, destination) folders bound read-write, e.g. a backend's own session
    store redirected into the run folder so a resumed run finds its session."""
    tmp = private_tmp(run_folder)
    env = tmp_env(tmp)
    hidden = _hidden_keys((worktree, run_folder, *extra))
    ag = agent_git.prepare(worktree, run_folder, tip)
    if ag is None:
        return Box(bwrap, worktree, (worktree, run_folder, *extra), tuple(binds), env=env,
                   hidden=hidden)
    return Box(bwrap, worktree, (worktree, run_folder, *extra), (*binds, *ag.binds()),
               ag.read_only(), {**env, **ag.env()}, hidden)
