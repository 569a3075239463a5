"""The `claude` backend's agent process: one task, run with claude-agent-sdk under the
agent contract (docs/agents.md).

Run as ``python -m aoi_git.runtime.backends.claude_runner`` with the task's worktree as cwd.

Reads
    ``AOI_TASK_FILE``     the task as JSON (`Task.to_dict()`),
    ``AOI_CONTEXT_FILE``  the assembled context (Markdown), used as the system prompt,
    ``AOI_AGENT_CONFIG``  JSON of `AgentConfig` (model, tools, caps, reflect),
    ``AOI_TASK_ID``       optional, used when the task JSON has no id.
Writes ``AOI_RESULT_FILE``::

    {"outcome": "completed | failed | blocked", "summary": "...",
     "subtasks": [...], "question": "...", "review": {...},   # when the agent made them
     "lessons": ["..."], "hire": {"talent": ..., "as": ..., "reason": ...},
     "error": "...",                                         # when the run itself failed
     "usage": {"input_tokens": N, "output_tokens": N, "usd": X}}

Exit status 0 whenever the result file was written, a failed outcome included.

Org actions are tools of the in-process MCP server ``aoi`` (the model sees
``mcp__aoi__<tool>``). Built-in tools are the config's `tools`: only those are offered to
the model, only those are pre-approved, any other call is refused (``dontAsk``), and a
`PreToolUse` hook denies, with a reason the model can read, any tool outside the list and
any Bash command that does not match the config's ``Bash(...)`` patterns.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    ResultMessage,
    SdkMcpTool,
    TextBlock,
    create_sdk_mcp_server,
    tool,
)

MCP_SERVER = "aoi"
MCP_PREFIX = f"mcp__{MCP_SERVER}__"
OUTCOMES = ("completed", "failed", "blocked")
REFLECTION_PROMPT = (
    "In 1-3 sentences: what did you learn from this task that you would do differently "
    "next time? Answer in plain text, without using any tools."
)
REFLECTION_TIMEOUT_S = 120.0
# Environment the CLI must see even if a caller replaces the inherited environment.
PASSTHROUGH_PREFIXES = ("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_CONFIG_DIR", "AWS_", "GOOGLE_")
PASSTHROUGH_NAMES = ("HOME", "IS_SANDBOX", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "PATH")
SHELL_OPERATORS = (";", "|", "&", "`", "$(", ">", "<", "\n")


class RunnerError(Exception):
    """The process contract was not met (missing variable or unreadable input)."""


# ---------------------------------------------------------------------------------------
# What the agent reports through its tools


@dataclass
class Accumulator:
    """Everything the agent's `aoi` tools recorded during the run."""

    subtasks: list[dict[str, Any]] = field(default_factory=list)
    question: str | None = None
    review: dict[str, str] | None = None
    report: dict[str, Any] | None = None
    hire: dict[str, str] | None = None
    plans: list[dict[str, Any]] = field(default_factory=list)  # alternatives to choose among
    keep: list[str] = field(default_factory=list)  # a re-plan: existing subtasks kept
    cancel: list[str] = field(default_factory=list)  # a re-plan: existing subtasks cancelled
    choice: dict[str, Any] | None = None  # a choice task's verdict
    frozen: bool = False  # set for the reflection turn: nothing is recorded any more


def _text(message: str, *, error: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"content": [{"type": "text", "text": message}]}
    if error:
        out["is_error"] = True
    return out


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


SUBTASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "assignee": {"type": "string"},
        "depends_on": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["key", "title"],
}


def parse_subtasks(items: Any, known: set[str]) -> list[dict[str, Any]] | str:
    """The subtasks of a tool call (keys unique, also against `known`), or what is wrong."""
    if not isinstance(items, list) or not items:
        return "`subtasks` must be a non-empty list."
    known = set(known)
    new: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            return f"subtask {i} is not an object."
        key = str(item.get("key") or "").strip()
        title = str(item.get("title") or "").strip()
        if not key or not title:
            return f"subtask {i} needs a `key` and a `title`."
        if key in known:
            return f"duplicate subtask key {key!r}; keys must be unique."
        known.add(key)
        sub: dict[str, Any] = {
            "key": key,
            "title": title,
            "description": str(item.get("description") or ""),
            "depends_on": _str_list(item.get("depends_on")),
        }
        if item.get("assignee"):
            sub["assignee"] = str(item["assignee"])
        new.append(sub)
    return new


def make_tools(acc: Accumulator) -> list[SdkMcpTool[Any]]:
    """The org-action tools, each recording into `acc`."""

    @tool(
        "create_subtasks",
        "Split the task into subtasks for other employees. Each subtask has a short unique "
        "`key`, a `title`, a `description`, an `assignee` (an employee id or `role:<role>`) "
        "and `depends_on` (keys of sibling subtasks or existing task ids). The subtasks are "
        "created when you finish; this task then waits for them.",
        {
            "type": "object",
            "properties": {"subtasks": {"type": "array", "items": SUBTASK_SCHEMA}},
            "required": ["subtasks"],
        },
    )
    async def create_subtasks(args: dict[str, Any]) -> dict[str, Any]:
        if acc.frozen:
            return _text("The task is finished; nothing recorded.", error=True)
        if acc.plans:
            return _text("You proposed alternative plans; subtasks come from the chosen one.",
                         error=True)
        new = parse_subtasks(args.get("subtasks"), {s["key"] for s in acc.subtasks})
        if isinstance(new, str):
            return _text(new, error=True)
        acc.subtasks.extend(new)
        keys = ", ".join(s["key"] for s in new)
        return _text(f"Recorded {len(new)} subtask(s): {keys}. They are created when you finish.")

    @tool(
        "ask_human",
        "Ask a human a question you cannot answer yourself. The task is blocked until the "
        "human answers; then it runs again with the answer.",
        {
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
        },
    )
    async def ask_human(args: dict[str, Any]) -> dict[str, Any]:
        if acc.frozen:
            return _text("The task is finished; nothing recorded.", error=True)
        question = str(args.get("question") or "").strip()
        if not question:
            return _text("`question` must not be empty.", error=True)
        acc.question = question
        return _text(
            "Question recorded. The task will be blocked until a human answers; "
            "stop working now (you may call report_result with outcome `blocked`)."
        )

    @tool(
        "submit_review",
        "Give your review decision on the work under review: `accept` or `reject`, with "
        "feedback (required for reject: what exactly must change).",
        {
            "type": "object",
            "properties": {
                "decision": {"type": "string", "enum": ["accept", "reject"]},
                "feedback": {"type": "string"},
            },
            "required": ["decision"],
        },
    )
    async def submit_review(args: dict[str, Any]) -> dict[str, Any]:
        if acc.frozen:
            return _text("The task is finished; nothing recorded.", error=True)
        decision = str(args.get("decision") or "").strip().lower()
        if decision not in ("accept", "reject"):
            return _text("`decision` must be `accept` or `reject`.", error=True)
        feedback = str(args.get("feedback") or "").strip()
        if decision == "reject" and not feedback:
            return _text("A rejection needs `feedback` saying what must change.", error=True)
        acc.review = {"decision": decision, "feedback": feedback}
        return _text(f"Review recorded: {decision}.")

    @tool(
        "report_result",
        "Finish the task: report the outcome (`completed`, `failed` or `blocked`), a summary "
        "of what was done, and optionally lessons learned for next time.",
        {
            "type": "object",
            "properties": {
                "outcome": {"type": "string", "enum": list(OUTCOMES)},
                "summary": {"type": "string"},
                "lessons": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["outcome", "summary"],
        },
    )
    async def report_result(args: dict[str, Any]) -> dict[str, Any]:
        if acc.frozen:
            return _text("The task is finished; nothing recorded.", error=True)
        outcome = str(args.get("outcome") or "").strip().lower()
        if outcome not in OUTCOMES:
            return _text(f"`outcome` must be one of {', '.join(OUTCOMES)}.", error=True)
        acc.report = {
            "outcome": outcome,
            "summary": str(args.get("summary") or "").strip(),
            "lessons": [s for s in _str_list(args.get("lessons")) if s.strip()],
        }
        return _text(f"Result recorded ({outcome}). You are done: stop now.")

    @tool(
        "propose_hire",
        "Propose hiring a new employee from a talent of the market: the talent id, the new "
        "employee id (`as`) and why the organisation needs it. A human decides.",
        {
            "type": "object",
            "properties": {
                "talent": {"type": "string"},
                "as": {"type": "string"},
                "reason": {"type": "string"},
            },
            "required": ["talent", "as", "reason"],
        },
    )
    async def propose_hire(args: dict[str, Any]) -> dict[str, Any]:
        if acc.frozen:
            return _text("The task is finished; nothing recorded.", error=True)
        talent = str(args.get("talent") or "").strip()
        as_id = str(args.get("as") or "").strip()
        if not talent or not as_id:
            return _text("`talent` and `as` must not be empty.", error=True)
        acc.hire = {"talent": talent, "as": as_id, "reason": str(args.get("reason") or "")}
        return _text(f"Hire proposal recorded: {talent} as {as_id}.")

    @tool(
        "propose_plans",
        "Instead of create_subtasks, offer two or more alternative plans for this task: each "
        "a `title`, a `summary` (approach, cost, risks) and its `subtasks` (as in "
        "create_subtasks). The task's reviewer chooses one before any subtask starts.",
        {
            "type": "object",
            "properties": {"plans": {"type": "array", "items": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "summary": {"type": "string"},
                               "subtasks": {"type": "array", "items": SUBTASK_SCHEMA}},
                "required": ["title", "subtasks"]}}},
            "required": ["plans"],
        },
    )
    async def propose_plans(args: dict[str, Any]) -> dict[str, Any]:
        if acc.frozen:
            return _text("The task is finished; nothing recorded.", error=True)
        if acc.subtasks or acc.keep or acc.cancel:
            return _text("You already created subtasks or revised the plan; give either "
                         "alternative plans or subtasks.", error=True)
        items = args.get("plans")
        if not isinstance(items, list) or len(items) < 2:
            return _text("`plans` must list at least two alternatives.", error=True)
        plans: list[dict[str, Any]] = []
        for i, item in enumerate(items, 1):
            title = str(item.get("title") or "").strip() if isinstance(item, Mapping) else ""
            if not title:
                return _text(f"plan {i} needs a `title`.", error=True)
            subs = parse_subtasks(item.get("subtasks"), set())
            if isinstance(subs, str):
                return _text(f"plan {i}: {subs}", error=True)
            plans.append({"title": title, "summary": str(item.get("summary") or ""),
                          "subtasks": subs})
        acc.plans = plans
        return _text(f"Recorded {len(plans)} alternative plans; the task's reviewer chooses "
                     "one when you finish.")

    @tool(
        "revise_plan",
        "Re-planning a task you decomposed before (see \"Your plan so far\"): `keep` lists "
        "ids of existing subtasks to keep (a failed one runs again), `cancel` ids of "
        "unfinished ones to drop. Add new subtasks with create_subtasks; finished subtasks "
        "always stay.",
        {
            "type": "object",
            "properties": {"keep": {"type": "array", "items": {"type": "string"}},
                           "cancel": {"type": "array", "items": {"type": "string"}}},
        },
    )
    async def revise_plan(args: dict[str, Any]) -> dict[str, Any]:
        if acc.frozen:
            return _text("The task is finished; nothing recorded.", error=True)
        keep = [k for k in _str_list(args.get("keep")) if k.strip()]
        cancel = [k for k in _str_list(args.get("cancel")) if k.strip()]
        if not keep and not cancel:
            return _text("Name subtasks to `keep` or `cancel`.", error=True)
        both = sorted(set(keep) & set(cancel))
        if both:
            return _text(f"{both[0]} is both kept and cancelled.", error=True)
        acc.keep = list(dict.fromkeys([*acc.keep, *keep]))
        acc.cancel = list(dict.fromkeys([*acc.cancel, *cancel]))
        return _text(f"Plan revision recorded: keep {', '.join(acc.keep) or 'none'}; "
                     f"cancel {', '.join(acc.cancel) or 'none'}.")

    @tool(
        "choose_plan",
        "For a choice among alternative plans: the number of the plan to carry out "
        "(from 1) and why.",
        {
            "type": "object",
            "properties": {"plan": {"type": "integer"}, "reason": {"type": "string"}},
            "required": ["plan", "reason"],
        },
    )
    async def choose_plan(args: dict[str, Any]) -> dict[str, Any]:
        if acc.frozen:
            return _text("The task is finished; nothing recorded.", error=True)
        plan = args.get("plan")
        if isinstance(plan, str) and plan.strip().isdigit():
            plan = int(plan)
        if not isinstance(plan, int) or isinstance(plan, bool) or plan < 1:
            return _text("`plan` must be a plan's number, from 1.", error=True)
        acc.choice = {"plan": plan, "reason": str(args.get("reason") or "").strip()}
        return _text(f"Choice recorded: plan {plan}.")

    return [create_subtasks, ask_human, submit_review, report_result, propose_hire,
            propose_plans, revise_plan, choose_plan]


# ---------------------------------------------------------------------------------------
# Tool gating


def split_tool(spec: str) -> tuple[str, str | None]:
    """`"Bash(git:*)"` → `("Bash", "git:*")`; `"Read"` → `("Read", None)`."""
    spec = spec.strip()
    if spec.endswith(")") and "(" in spec:
        name, _, rest = spec.partition("(")
        return name.strip(), rest[:-1].strip()
    return spec, None


def command_matches(command: str, pattern: str) -> bool:
    """Claude Code's Bash rule syntax: `cmd:*` is a prefix, otherwise a glob or exact text."""
    command = command.strip()
    if pattern.endswith(":*"):
        prefix = pattern[:-2].strip()
        return command == prefix or command.startswith(prefix + " ")
    return fnmatch.fnmatchcase(command, pattern)


@dataclass(frozen=True)
class ToolGate:
    """Which tools the employee may use, from the config's tool list."""

    specs: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        """The built-in tools to offer to the model (base names, in order, no duplicates)."""
        seen: dict[str, None] = {}
        for spec in self.specs:
            seen.setdefault(split_tool(spec)[0], None)
        return list(seen)

    def patterns(self, name: str) -> list[str] | None:
        """None if `name` is allowed without restriction, else its patterns (maybe none)."""
        pats: list[str] = []
        for spec in self.specs:
            base, pattern = split_tool(spec)
            if base != name:
                continue
            if pattern is None or pattern in ("", "*"):
                return None
            pats.append(pattern)
        return pats

    def check(self, name: str, tool_input: Mapping[str, Any]) -> str | None:
        """None if the call may go ahead, else the reason it is denied."""
        if name.startswith(MCP_PREFIX):
            return None
        allowed = ", ".join(self.specs) or "none"
        if name not in self.names:
            return (
                f"aoi: the tool `{name}` is not allowed for this employee "
                f"(allowed tools: {allowed}). Do the work with the allowed tools, or call "
                f"mcp__aoi__ask_human / mcp__aoi__report_result if you cannot."
            )
        pats = self.patterns(name)
        if pats is None or name != "Bash":
            return None  # other tools' patterns are enforced by the CLI's permission rules
        command = str(tool_input.get("command") or "")
        if any(op in command for op in SHELL_OPERATORS):
            return (
                f"aoi: Bash is limited to commands matching {', '.join(pats)}; compound "
                f"commands, pipes and redirections are not allowed: `{command}`."
            )
        if not any(command_matches(command, p) for p in pats):
            return (
                f"aoi: Bash is limited to commands matching {', '.join(pats)} for this "
                f"employee; `{command}` is not allowed."
            )
        return None


# ---------------------------------------------------------------------------------------
# The run


@dataclass
class RunState:
    """What the message stream told us."""

    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    final_text: str = ""
    error: str | None = None
    failure: str | None = None  # the result's `failure` kind when the run itself failed
    session_id: str | None = None
    seen_messages: set[str] = field(default_factory=set)
    live_tokens: int = 0  # tokens seen in assistant messages so far (for max_tokens)
    live_input: int = 0  # (the same, by kind: what `note_usage` writes)
    live_output: int = 0

    def add_result(self, msg: ResultMessage) -> None:
        usage = msg.usage or {}
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.input_tokens += int(usage.get("cache_creation_input_tokens") or 0)
        self.input_tokens += int(usage.get("cache_read_input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)
        if msg.total_cost_usd is not None:  # cumulative for the session
            self.usd = max(self.usd, float(msg.total_cost_usd))
        self.session_id = msg.session_id or self.session_id


def describe_error(msg: ResultMessage) -> str:
    if msg.subtype == "success":  # is_error with subtype success: the API call failed
        parts = ["claude run failed"]
    else:
        parts = [f"claude run ended with {msg.subtype}"]
    if msg.api_error_status is not None:
        parts.append(f"API status {msg.api_error_status}")
    if msg.terminal_reason and msg.terminal_reason != "completed":
        parts.append(f"reason {msg.terminal_reason}")
    if msg.num_turns:
        parts.append(f"after {msg.num_turns} turn(s)")
    detail = "; ".join(parts)
    extra = [e for e in (msg.errors or []) if e] or ([msg.result] if msg.result else [])
    if extra:
        detail += ": " + " | ".join(str(e) for e in extra)[:2000]
    return detail


# what the CLI says when it has no working key or login
_CREDENTIAL_SIGNS = ("not logged in", "please run /login", "invalid api key",
                     "authentication_error", "oauth token has expired", "credit balance")


def failure_of(msg: ResultMessage, detail: str) -> str | None:
    """The result's `failure` kind for a run that ended in error (docs/agents.md): budget
    (the SDK stopped at max_budget_usd), credentials (no working key or login), permanent
    (the turn cap: the same run stops there again), or None (may work when retried)."""
    if msg.subtype == "error_max_budget_usd":
        return "budget"
    if msg.subtype == "error_max_turns":
        return "permanent"
    text = detail.lower()
    if msg.api_error_status in (401, 403) or any(sign in text for sign in _CREDENTIAL_SIGNS):
        return "credentials"
    return None


def build_prompt(task: Mapping[str, Any]) -> str:
    task_id = str(task.get("id") or "")
    title = str(task.get("title") or "").strip()
    lines = [f"# Task {task_id}: {title}".rstrip(": ").rstrip(), ""]
    description = str(task.get("description") or "").strip()
    if description:
        lines += [description, ""]
    feedback = [
        str(fb.get("text") if isinstance(fb, Mapping) else fb).strip()
        for fb in task.get("feedback") or ()
    ]
    feedback = [f for f in feedback if f]
    if feedback:
        lines += ["## Feedback on earlier attempts (address all of it)", ""]
        lines += [f"- {f}" for f in feedback] + [""]
    if task.get("answer"):
        lines += ["## A human answered your question", ""]
        if task.get("question"):
            lines += [f"Question: {task['question']}"]
        lines += [f"Answer: {task['answer']}", ""]
    extra = task.get("extra") if isinstance(task.get("extra"), Mapping) else {}
    assert isinstance(extra, Mapping)
    if extra.get("choice_for"):
        lines += [
            f"This is a choice among the alternative plans for {extra['choice_for']} described "
            f"above. Call `{MCP_PREFIX}choose_plan` with the plan's number and why.",
            "",
        ]
    elif str(task.get("kind") or "work") == "review":
        subject = task.get("subject") or "the work described above"
        lines += [
            f"This is a review of {subject}. Check the work against its task, then call "
            f"`{MCP_PREFIX}submit_review` with `accept` or `reject` (with concrete feedback).",
            "",
        ]
    lines += [
        "Work in the current directory (your own git worktree). Use "
        f"`{MCP_PREFIX}create_subtasks` to delegate parts to others (or "
        f"`{MCP_PREFIX}propose_plans` to offer alternative plans; re-planning, "
        f"`{MCP_PREFIX}revise_plan` to keep or cancel your existing subtasks), "
        f"`{MCP_PREFIX}ask_human` if you are blocked on a question only a human can answer. "
        f"When you are done, finish by calling `{MCP_PREFIX}report_result` with the outcome "
        "and a short summary of what you did.",
    ]
    return "\n".join(lines)


RESUME_PROMPT = (
    "Your run of this task was stopped before you finished (paused, preempted or "
    "reassigned) and now goes on in the same session and worktree: your files are as you "
    "left them. Check where you were and continue the task from there; finish as before, "
    f"with `{MCP_PREFIX}report_result`."
)


def start_session(config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The options that start (or resume) this run's session, and its id. The id is noted
    in `$AOI_SESSION_FILE` before the run starts, so a run stopped at any moment can be
    resumed: the daemon keeps it with the suspended task (`extra.session`)."""
    resume = str(config.get("resume_session") or "")
    sid = resume or str(uuid.uuid4())
    path = os.environ.get("AOI_SESSION_FILE")
    if path:
        try:
            Path(path).write_text(sid + "\n")
        except OSError as exc:
            print(f"aoi claude runner: cannot note the session: {exc}", file=sys.stderr)
    return ({"resume": resume} if resume else {"session_id": sid}), sid


def note_usage(state: RunState) -> None:
    """What the run has spent so far, in `$AOI_USAGE_FILE`: the daemon reads it when the
    run is stopped before it reports (paused, preempted, cancelled)."""
    path = os.environ.get("AOI_USAGE_FILE")
    if not path:
        return
    usage = {"input_tokens": state.live_input, "output_tokens": state.live_output}
    try:
        write_result(Path(path), usage)
    except OSError as exc:
        print(f"aoi claude runner: cannot note the usage: {exc}", file=sys.stderr)


def cli_env(config: Mapping[str, Any]) -> dict[str, str]:
    """The runner's own ANTHROPIC_*/CLAUDE_CODE_* etc. variables, passed on explicitly."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(PASSTHROUGH_PREFIXES) or k in PASSTHROUGH_NAMES
    }
    extra = (config.get("options") or {}).get("env") or {}
    env.update({str(k): str(v) for k, v in extra.items()})
    return env


def build_options(
    config: Mapping[str, Any], context: str, acc: Accumulator, gate: ToolGate
) -> ClaudeAgentOptions:
    mcp_tools = make_tools(acc)
    mcp_names = [f"{MCP_PREFIX}{t.name}" for t in mcp_tools]

    async def pre_tool_use(
        data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        name = str(data.get("tool_name") or "")
        tool_input = data.get("tool_input") or {}
        if acc.frozen:
            reason: str | None = "aoi: the task is finished; answer in plain text, no tools."
        else:
            reason = gate.check(name, tool_input if isinstance(tool_input, Mapping) else {})
        if reason is None:
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": reason,
            }
        }

    options: dict[str, Any] = dict(config.get("options") or {})
    kwargs: dict[str, Any] = {
        "system_prompt": context,
        "cwd": os.getcwd(),
        "setting_sources": [],
        "tools": gate.names,
        "allowed_tools": list(gate.specs) + mcp_names,
        "mcp_servers": {MCP_SERVER: create_sdk_mcp_server(MCP_SERVER, tools=mcp_tools)},
        "strict_mcp_config": True,
        "hooks": {"PreToolUse": [HookMatcher(matcher=None, hooks=[pre_tool_use])]},
        "permission_mode": str(options.get("permission_mode") or "dontAsk"),
        "env": cli_env(config),
        "stderr": lambda line: print(f"[claude] {line}", file=sys.stderr, flush=True),
    }
    if config.get("model"):
        kwargs["model"] = str(config["model"])
    if config.get("max_turns"):
        kwargs["max_turns"] = int(config["max_turns"])
    if config.get("max_budget_usd") is not None:
        kwargs["max_budget_usd"] = float(config["max_budget_usd"])
    for key in ("fallback_model", "effort", "cli_path", "add_dirs"):
        if options.get(key):
            kwargs[key] = options[key]
    session, _ = start_session(config)
    kwargs.update(session)
    return ClaudeAgentOptions(**kwargs)


async def _consume(
    client: ClaudeSDKClient, state: RunState, max_tokens: int | None, *, collect: list[str]
) -> ResultMessage | None:
    """Read one response; returns its ResultMessage (None if the stream broke first)."""
    result: ResultMessage | None = None
    interrupted = False
    try:
        async for msg in client.receive_response():
            if isinstance(msg, AssistantMessage):
                texts = [b.text for b in msg.content if isinstance(b, TextBlock) and b.text]
                if texts:
                    collect.append("\n".join(texts))
                key = msg.message_id or str(id(msg))
                if msg.usage and key not in state.seen_messages:
                    state.seen_messages.add(key)
                    state.live_tokens += int(msg.usage.get("input_tokens") or 0)
                    state.live_tokens += int(msg.usage.get("output_tokens") or 0)
                    state.live_input += int(msg.usage.get("input_tokens") or 0)
                    state.live_output += int(msg.usage.get("output_tokens") or 0)
                    note_usage(state)
                if max_tokens and state.live_tokens > max_tokens and not interrupted:
                    interrupted = True
                    state.failure = "budget"
                    state.error = (
                        f"token budget exceeded: {state.live_tokens} tokens used, "
                        f"max_tokens is {max_tokens}"
                    )
                    await client.interrupt()
            elif isinstance(msg, ResultMessage):
                result = msg
                state.add_result(msg)
    except Exception as exc:  # the SDK raises after yielding an error ResultMessage
        if result is None or not result.is_error:
            raise
        print(f"aoi claude runner: after error result: {exc!r}", file=sys.stderr)
    return result


async def run_agent(
    task: Mapping[str, Any], context: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    acc = Accumulator()
    state = RunState()
    gate = ToolGate(tuple(str(t) for t in config.get("tools") or ()))
    options = build_options(config, context, acc, gate)
    max_tokens = int(config["max_tokens"]) if config.get("max_tokens") else None
    texts: list[str] = []
    reflection: str | None = None
    try:
        async with ClaudeSDKClient(options=options) as client:
            await client.query(RESUME_PROMPT if config.get("resume_session")
                               else build_prompt(task))
            result = await _consume(client, state, max_tokens, collect=texts)
            if result is None:
                state.error = state.error or "claude run ended without a result"
            elif result.is_error or result.subtype != "success":
                if state.error is None:
                    state.error = describe_error(result)
                    state.failure = failure_of(result, state.error)
                    if result.subtype == "error_max_turns":
                        state.error += (" (the turn cap: capacity.max_turns of the employee; "
                                        "raise it or split the task)")
            else:
                state.final_text = (result.result or "").strip() or (texts[-1] if texts else "")
            completed = (
                state.error is None
                and (acc.report is None or acc.report["outcome"] == "completed")
                and acc.question is None
            )
            if config.get("reflect") and completed:
                reflection = await _reflect(client, state, acc)
    except Exception as exc:
        if state.error is None:
            state.error = f"claude run failed: {type(exc).__name__}: {exc}"
        print(f"aoi claude runner: {state.error}", file=sys.stderr)
    return assemble(acc, state, reflection)


async def _reflect(client: ClaudeSDKClient, state: RunState, acc: Accumulator) -> str | None:
    """One short follow-up turn in the same session; never fails the task."""
    acc.frozen = True
    texts: list[str] = []
    saved_error = state.error
    try:
        await client.query(REFLECTION_PROMPT)
        result = await asyncio.wait_for(
            _consume(client, state, None, collect=texts), REFLECTION_TIMEOUT_S
        )
    except Exception as exc:
        print(f"aoi claude runner: reflection skipped: {exc!r}", file=sys.stderr)
        return None
    finally:
        state.error = saved_error
    if result is None or result.is_error:
        return None
    answer = (result.result or "").strip() or (texts[-1].strip() if texts else "")
    return answer or None


def assemble(acc: Accumulator, state: RunState, reflection: str | None) -> dict[str, Any]:
    """The result file's content from what the tools recorded and how the run ended."""
    out: dict[str, Any] = {}
    report = acc.report
    if report is not None:
        outcome = str(report["outcome"])
        summary = str(report["summary"])
    elif state.error is not None and acc.question is None:
        outcome, summary = "failed", state.error
    else:
        outcome, summary = "completed", state.final_text
    if acc.question is not None and outcome != "failed":
        outcome = "blocked"
    if outcome == "blocked":
        out["question"] = acc.question or summary
        summary = summary or f"blocked on a question: {out['question']}"
    if not summary:
        summary = "(the agent gave no summary)"
    out = {"outcome": outcome, "summary": summary, **out}
    if state.error is not None:
        out["error"] = state.error
        if state.failure and outcome == "failed":
            out["failure"] = state.failure
    if acc.subtasks:
        out["subtasks"] = acc.subtasks
    if acc.review is not None:
        out["review"] = acc.review
    if acc.plans:
        out["plans"] = acc.plans
    if acc.keep:
        out["keep"] = acc.keep
    if acc.cancel:
        out["cancel"] = acc.cancel
    if acc.choice is not None:
        out["choice"] = acc.choice
    lessons = list(report["lessons"]) if report else []
    if reflection:
        lessons.append(reflection)
    if lessons:
        out["lessons"] = lessons
    if acc.hire is not None:
        out["hire"] = acc.hire
    out["usage"] = {
        "input_tokens": state.input_tokens,
        "output_tokens": state.output_tokens,
        "usd": round(state.usd, 6),
    }
    return out


# ---------------------------------------------------------------------------------------
# Process contract


def _env_path(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        raise RunnerError(f"{name} is not set; the daemon sets it (see docs/agents.md)")
    return Path(value)


def _read_json(name: str) -> dict[str, Any]:
    path = _env_path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunnerError(f"cannot read {name}={path}: {exc}") from exc
    if not isinstance(data, dict):
        raise RunnerError(f"{name}={path} must hold a JSON object")
    return data


def write_result(path: Path, result: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main() -> int:
    try:
        result_path = _env_path("AOI_RESULT_FILE")
        task = _read_json("AOI_TASK_FILE")
        config = _read_json("AOI_AGENT_CONFIG")
        context = _env_path("AOI_CONTEXT_FILE").read_text(encoding="utf-8")
    except (RunnerError, OSError) as exc:
        print(f"aoi claude runner: {exc}", file=sys.stderr)
        return 2
    if not task.get("id"):
        task["id"] = os.environ.get("AOI_TASK_ID", "")
    result = asyncio.run(run_agent(task, context, config))
    write_result(result_path, result)
    print(f"aoi claude runner: {result['outcome']}: {result['summary'][:500]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
