"""Starting one agent run: its files, its configuration and environment, its process.

The agent gets its task, its context (assembled at HEAD), its configuration (tools,
model, turn and budget caps) in the run folder, the `AOI_*` variables naming them, and
its worktree as the working directory; the slot and task locks are inherited by it. It
runs in its sandbox unless aoi.yaml turns that off, and in its own cgroup where the
machine offers one (see `sandbox`, `run_unit`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aoi_git.domain.model import Employee, Task
from aoi_git.org.context import assemble_from_view
from aoi_git.org.organisation import Org
from aoi_git.org.tool_access import allowed_tools
from aoi_git.runtime import agent_run, run_unit, sandbox
from aoi_git.runtime.backends.base import AgentConfig, Backend
from aoi_git.store.identity import agent_git_env
from aoi_git.store.org_store import Store
from aoi_git.store.tree_snapshot import Snapshot
from aoi_git.store.worktrees import NewWorktree, Workspace


@dataclass
class Launched:
    files: agent_run.RunFiles
    proc: subprocess.Popen[bytes]
    timeout_s: float
    before: Snapshot | None  # the worktree as the agent got it


def agent_config(task: Task, emp: Employee, org: Org) -> AgentConfig:
    tools = allowed_tools(emp, org.config, org.talents.get(emp.talent or ""))
    budget_usd = task.budget.get("usd")
    return AgentConfig(
        employee=emp.id, role=emp.role, model=emp.backend.model, tools=tools,
        max_turns=emp.capacity.max_turns,
        max_budget_usd=(float(budget_usd) - float(task.cost.get("usd", 0.0)))
        if budget_usd is not None else None,
        max_tokens=int(task.budget.get("tokens") or emp.capacity.tokens_per_task or 0) or None,
        reflect=bool(emp.backend.options.get("reflect", emp.backend.kind == "claude")),
        options=dict(emp.backend.options),
        resume_session=task.bookkeeping.session if task.bookkeeping.resuming else None,
    )


def launch(task: Task, emp: Employee, backend: Backend, *, store: Store, org: Org,
           workspace: Workspace, made: NewWorktree, run_dir: Path, org_root: Path,
           keep_fds: Sequence[int]) -> Launched:
    """Write the run's files and start the agent in its worktree (`made`, waited for)."""
    view = store.head()
    sop_names = store.list_dir("sops", view)
    context = assemble_from_view(view, task, emp, org.tasks, sop_names)
    timeout = float(task.budget.get("timeout_s") or emp.capacity.timeout_s)
    cfg = agent_config(task, emp, org)
    files = agent_run.prepare(run_dir, {**task.to_dict(), "employee": emp.id},
                              context, cfg.to_json())
    resuming = bool(task.bookkeeping.resuming)
    if not resuming:
        files.session.unlink(missing_ok=True)  # an earlier run's: nothing to go on in
    cwd = made.ready()
    bwrap = sandbox.require(org.config.sandbox)
    state_binds = getattr(backend, "session_binds", None)  # e.g. the claude CLI's sessions
    box = sandbox.box_for_run(
        bwrap, cwd, files.folder, sandbox.extra_writable(org.config.sandbox, org_root),
        made.fresh_tip or workspace.branch_tip(task.id),
        binds=tuple(state_binds(emp, files.folder)) if state_binds else ()) if bwrap else None
    before = workspace.snapshot(task.id)
    env = {**os.environ, **backend.environment(emp),
           "AOI_TASK_ID": task.id, "AOI_TASK_FILE": str(files.task),
           "AOI_CONTEXT_FILE": str(files.context), "AOI_RESULT_FILE": str(files.result),
           "AOI_ORG_DIR": str(org_root), "AOI_AGENT_CONFIG": str(files.config),
           "AOI_EMPLOYEE": emp.id, "AOI_WORKSPACE_BASE": workspace.base,
           "AOI_SESSION_FILE": str(files.session), "AOI_USAGE_FILE": str(files.usage),
           **agent_git_env(emp.id)}
    if resuming:
        env["AOI_RESUMING"] = "1"
    proc = agent_run.spawn(backend.command(emp), files=files, cwd=cwd, env=env,
                           memory_mb=emp.capacity.memory_mb if getattr(
                               backend, "limit_address_space", True) else None,
                           keep_fds=keep_fds, box=box, cgroup=run_unit.create(task.id))
    return Launched(files, proc, timeout, before)
