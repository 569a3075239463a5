"""Running one agent process under the agent contract (docs/agents.md), and reading
what it left.

Each run has a folder `.aoi/runs/<task-id>/` holding the contract files, the agent's
stdout/stderr (files, never pipes: an agent printing megabytes cannot block anything),
`meta.json` (pid, process group, start time) and `exit` (its exit status, written the
moment the daemon reaps it). The agent is its own process group, so a timeout kills it
and everything it started; it gets SIGKILL from the kernel if the daemon dies
(PR_SET_PDEATHSIG), and the restarted daemon kills what is left of its group. With a
`Box` it runs in the sandbox (`sandbox`: its own pid namespace, which dies whole), with a
cgroup in its run cgroup (`run_unit`): what it double-forks cannot escape either.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoi_git.domain.result import AgentResult, Failure, PlanChoice, PlanOption
from aoi_git.runtime import run_unit
from aoi_git.runtime.sandbox import Box

MAX_RESULT_BYTES = 64 << 20  # a bigger result file is a failure (docs/agents.md)
# what is kept of a result's text fields (a big result is a result: it is cut to these)
MAX_SUMMARY = 20_000
MAX_TEXT = 20_000  # a question, a review's feedback, a subtask's description
MAX_TITLE = 200
MAX_LESSONS = 20
MAX_LESSON = 2_000
MAX_SUBTASKS = 1_000  # more are refused by limits.max_fanout anyway
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TAIL_BYTES = 4000

_libc: Any = None
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None
_PR_SET_PDEATHSIG = 1


@dataclass
class RunFiles:
    folder: Path

    @property
    def task(self) -> Path:
        return self.folder / "task.json"

    @property
    def context(self) -> Path:
        return self.folder / "context.md"

    @property
    def result(self) -> Path:
        return self.folder / "result.json"

    @property
    def config(self) -> Path:
        return self.folder / "agent-config.json"

    @property
    def stdout(self) -> Path:
        return self.folder / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.folder / "stderr.log"

    @property
    def meta(self) -> Path:
        return self.folder / "meta.json"

    @property
    def exit(self) -> Path:
        return self.folder / "exit"

    @property
    def usage(self) -> Path:
        """What the agent noted of its spending so far (`AOI_USAGE_FILE`)."""
        return self.folder / "usage.json"

    def read_usage(self) -> dict[str, float]:
        """The usage the agent noted, read like a result's (for a run stopped before it
        reported one)."""
        try:
            if self.usage.stat().st_size > MAX_RESULT_BYTES:
                return {}
            data = json.loads(self.usage.read_text())
        except (OSError, ValueError):
            return {}
        return _from_json({"usage": data}).usage if isinstance(data, dict) else {}

    @property
    def session(self) -> Path:
        """Where a backend that can resume a session notes its id (`AOI_SESSION_FILE`)."""
        return self.folder / "session"

    def read_employee(self) -> str | None:
        """The employee the run was started for (task.json, written by the daemon)."""
        try:
            data = json.loads(self.task.read_text())
        except (OSError, ValueError):
            return None
        emp = data.get("employee") if isinstance(data, dict) else None
        return emp if isinstance(emp, str) and emp else None

    def read_session(self) -> str | None:
        try:
            text = self.session.read_text(errors="replace").strip()
        except OSError:
            return None
        # (the run folder is the agent's to write: only an id-like value is taken)
        return text if _SESSION_ID.fullmatch(text) else None

    def read_meta(self) -> dict[str, Any]:
        try:
            data = json.loads(self.meta.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def clear_outcome(self) -> None:
        """Forget what an earlier run left (result, exit status, pid). Done before the
        claim is committed, so whatever recovery finds here belongs to the current claim."""
        for stale in (self.result, self.exit, self.meta, self.usage):
            stale.unlink(missing_ok=True)

    def read_exit(self) -> int | None:
        try:
            return int(self.exit.read_text().strip())
        except (OSError, ValueError):
            return None


def prepare(folder: Path, task: Mapping[str, Any], context: str,
            config: Mapping[str, Any]) -> RunFiles:
    folder.mkdir(parents=True, exist_ok=True)
    files = RunFiles(folder)
    files.clear_outcome()
    files.task.write_text(json.dumps(task, indent=2, default=str))
    files.context.write_text(context)
    files.config.write_text(json.dumps(config, indent=2, default=str))
    return files


def _child_setup(memory_mb: int | None, cgroup: Path | None) -> Any:
    parent = os.getpid()
    procs = str(run_unit.procs_file(cgroup)) if cgroup is not None else None

    def setup() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the daemon died before the line above: no orphan
                os._exit(137)
        if procs is not None:
            with contextlib.suppress(OSError), open(procs, "w") as fh:
                fh.write(str(os.getpid()))
        if memory_mb:
            limit = int(memory_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return setup


# `sh -c` run by `setpriv --pdeathsig KILL`: the orphan check of `_child_setup`, then the agent
_ORPHAN_CHECK = 'test "$PPID" = "$0" || exit 137; exec "$@"'
# the same, first moving itself into the run's cgroup (its `cgroup.procs` is "$1")
_ORPHAN_CHECK_JOIN = 'test "$PPID" = "$0" || exit 137; echo $$ 2>/dev/null >"$1"; shift; exec "$@"'


@functools.cache
def _launch_tools() -> tuple[str, str | None] | None:
    """`setpriv` (util-linux, with --pdeathsig) and `prlimit`, or None where missing."""
    setpriv = shutil.which("setpriv")
    if sys.platform != "linux" or setpriv is None or not os.path.exists("/bin/sh"):
        return None
    try:
        usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True,
                               timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return (setpriv, shutil.which("prlimit")) if "--pdeathsig" in usage else None


def _runnable(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> bool:
    """True when `argv[0]` names an executable file execve can run (ELF or `#!`)."""
    if not argv:
        return False
    exe = str(argv[0])
    if os.sep in exe:
        path: str | None = exe if os.path.isabs(exe) else os.path.join(cwd, exe)
    else:
        path = shutil.which(exe, path=env.get("PATH", os.defpath))
    if path is None or not os.path.isfile(path) or not os.access(path, os.X_OK):
        return False
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return False
    return magic.startswith(b"#!") or magic == b"\x7fELF"


def _launcher(argv: Sequence[str], cwd: Path, env: Mapping[str, str],
              memory_mb: int | None, cgroup: Path | None) -> list[str] | None:
    """`argv` behind helpers that do `_child_setup`'s work after exec, or None.

    A `preexec_fn` makes Popen fork the daemon, which copies its page tables: ~45 ms for a
    daemon holding 100k tasks (0.5 GB), against ~2 ms for the vfork Popen uses otherwise.
    `setpriv --pdeathsig KILL` then `sh` (the orphan check) then `prlimit --as` (the memory
    cap) exec one another in the same process, so pid, process group, death signal and
    limit end up as with `_child_setup`. A command that cannot be run is left to the
    plain path, so it still fails in Popen with the same error."""
    tools = _launch_tools()
    if tools is None or not argv or (memory_mb and tools[1] is None):
        return None
    if not _runnable(argv, cwd, env):
        return None  # `sh` would run it as a script where execve fails: keep the old path
    setpriv, prlimit = tools
    out = [setpriv, "--pdeathsig", "KILL", "--", "/bin/sh", "-c"]
    if cgroup is not None:
        out += [_ORPHAN_CHECK_JOIN, str(os.getpid()), str(run_unit.procs_file(cgroup))]
    else:
        out += [_ORPHAN_CHECK, str(os.getpid())]
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        out += [str(prlimit), f"--as={limit}:{limit}", "--"]
    return out + [str(a) for a in argv]


def spawn(
    argv: Sequence[str],
    *,
    files: RunFiles,
    cwd: Path,
    env: Mapping[str, str],
    memory_mb: int | None,
    keep_fds: Sequence[int] = (),
    box: Box | None = None,
    cgroup: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the agent: in `box` (the sandbox) when given, in `cgroup` when given.

    A command that cannot be run is started as it is, outside the box, so that it fails
    in Popen with its own error (it runs nothing)."""
    command = list(argv)
    if box is not None and _runnable(argv, cwd, env):
        command = box.argv(argv)
        env = {**env, **box.env}
    out = open(files.stdout, "wb")  # noqa: SIM115 - handed to the child
    err = open(files.stderr, "wb")  # noqa: SIM115
    launch = _launcher(command, cwd, env, memory_mb, cgroup)
    try:
        proc = subprocess.Popen(
            launch or command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
            stdout=out, stderr=err, start_new_session=True, pass_fds=tuple(keep_fds),
            preexec_fn=None if launch else _child_setup(memory_mb, cgroup),
        )
    finally:
        out.close()
        err.close()
    files.meta.write_text(json.dumps({"pid": proc.pid, "pgid": proc.pid,
                                      "started": time.time(), "daemon": os.getpid(),
                                      "argv": list(argv), "sandboxed": command != list(argv),
                                      "cgroup": str(cgroup) if cgroup else None}))
    return proc


def end_run(files: RunFiles, pgid: int, task_id: str) -> None:
    """Kill whatever is left of a run: its process group and its cgroup.

    meta.json is in the run folder, which the agent can write: its cgroup is killed only
    when it is this task's run cgroup (`run_unit.owned`)."""
    if pgid:
        kill_group(pgid, signal.SIGKILL)
    cgroup = files.read_meta().get("cgroup")
    if isinstance(cgroup, str) and run_unit.owned(cgroup, task_id):
        run_unit.kill(cgroup)


def owns_group(files: RunFiles, pgid: int) -> bool:
    """True when process group `pgid` was started for this run: its leader's environment
    names this run's result file (which no other process has). meta.json, where `pgid`
    comes from, can be rewritten by the agent: it must not make the daemon kill others."""
    try:
        environ = Path(f"/proc/{pgid}/environ").read_bytes()
    except OSError:
        return False
    return f"AOI_RESULT_FILE={files.result}".encode() in environ.split(b"\0")


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True


def tail(path: Path, limit: int = TAIL_BYTES) -> str:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size > limit:
                fh.seek(size - limit)
            data = fh.read(limit)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").strip()
    return ("[...]" + text) if size > limit else text


def read_result(files: RunFiles, returncode: int | None) -> AgentResult:
    """What the agent reported; the exit status and output tails when it wrote nothing."""
    try:
        size = files.result.stat().st_size
    except FileNotFoundError:
        size = -1
    if size > MAX_RESULT_BYTES:
        return _malformed(f"the result file is {size} bytes, over the {MAX_RESULT_BYTES >> 20} "
                          "MiB limit")
    if size >= 0:
        raw = files.result.read_bytes()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return _malformed(f"the result file is not valid JSON ({str(exc)[:200]}); "
                              f"stderr: {tail(files.stderr, 600)}")
        del raw
        if not isinstance(data, dict):
            return _malformed("the result file must hold a JSON object")
        return _from_json(data)
    if returncode == 0:
        return AgentResult("completed", summary=tail(files.stdout, 2000) or "(no output)")
    how = f"exit status {returncode}" if returncode is not None else "no exit status"
    if returncode is not None and returncode < 0:
        how = f"killed by signal {-returncode}"
    return AgentResult("failed", error=f"agent failed ({how}) without a result; "
                       f"stderr: {tail(files.stderr, 1500) or '(empty)'}")


def _malformed(error: str) -> AgentResult:
    """A result no retry of the same agent can make readable: escalated at once."""
    return AgentResult("failed", error=f"malformed result: {error}", failure=Failure.PERMANENT)


def _cut(value: Any, limit: int) -> str:
    return str(value)[:limit]


def _subtask(s: Mapping[str, Any]) -> dict[str, Any]:
    """A subtask as the result gave it, its text fields cut to their bounds."""
    out = dict(s)
    out["title"] = _cut(s["title"], MAX_TITLE)
    if "description" in out:
        out["description"] = _cut(out["description"], MAX_TEXT)
    for key in ("labels", "depends_on"):
        if isinstance(out.get(key), list):
            out[key] = [_cut(x, MAX_TITLE) for x in out[key][:MAX_SUBTASKS]]
    return out


def _from_json(d: Mapping[str, Any]) -> AgentResult:
    outcome = str(d.get("outcome") or "completed")
    if outcome not in ("completed", "failed", "blocked"):
        return _malformed(f"unknown outcome {outcome[:100]!r} in the result file")
    usage_raw = d.get("usage") if isinstance(d.get("usage"), dict) else {}
    assert isinstance(usage_raw, dict)
    usage: dict[str, float] = {}
    for k in ("input_tokens", "output_tokens", "usd"):
        v = usage_raw.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1e15:
            usage[k] = v
    subtasks = [_subtask(s) for s in (d.get("subtasks") or [])[:MAX_SUBTASKS + 1]
                if isinstance(s, dict) and s.get("title")]
    review = d.get("review") if isinstance(d.get("review"), dict) else None
    if review is not None:
        review = {k: _cut(v, MAX_TEXT) for k, v in review.items() if k in ("decision", "feedback")}
    lessons = [_cut(x, MAX_LESSON) for x in (d.get("lessons") or [])[:MAX_LESSONS]
               if isinstance(x, str | int | float)] if isinstance(d.get("lessons"), list) else []
    hire = d.get("hire") if isinstance(d.get("hire"), dict) else None
    if hire is not None:
        hire = {k: _cut(v, MAX_TEXT) for k, v in hire.items() if k in ("talent", "as", "reason")}
    try:
        failure = Failure(str(d.get("failure") or "retry"))
    except ValueError:
        failure = Failure.RETRY
    res = AgentResult(
        outcome=outcome,
        summary=_cut(d.get("summary") or "", MAX_SUMMARY),
        subtasks=subtasks,
        question=_cut(d["question"], MAX_TEXT) if d.get("question") else None,
        review=review,
        usage=usage,
        lessons=lessons,
        hire=hire,
        error=_cut(d["error"], 4000) if d.get("error") else None,
        failure=failure if outcome == "failed" else Failure.RETRY,
        plans=_plans(d.get("plans")),
        keep=_ids(d.get("keep")),
        cancel=_ids(d.get("cancel")),
        choice=_choice(d.get("choice")),
    )
    if outcome == "blocked" and not res.question:
        res.question = res.summary or "The agent is blocked and did not say why."
    if outcome == "failed" and not res.error:
        res.error = res.summary or "the agent reported failure"
    return res


def _plans(raw: Any) -> list[PlanOption]:
    """The alternatives of `plans`: each a mapping with a title and a list of subtasks."""
    out: list[PlanOption] = []
    for i, p in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(p, dict):
            continue
        subs = tuple(s for s in p.get("subtasks") or [] if isinstance(s, dict) and s.get("title"))
        out.append(PlanOption(title=str(p.get("title") or f"plan {i + 1}")[:200],
                              summary=str(p.get("summary") or "")[:4000], subtasks=subs))
    return out


def _ids(raw: Any) -> list[str]:
    return [str(x) for x in raw if isinstance(x, str)] if isinstance(raw, list) else []


def _choice(raw: Any) -> PlanChoice | None:
    if not isinstance(raw, dict) or isinstance(raw.get("plan"), bool) \
            or not isinstance(raw.get("plan"), int):
        return None
    return PlanChoice(plan=int(raw["plan"]), reason=str(raw.get("reason") or "")[:4000])
