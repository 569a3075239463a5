"""One-on-ones: a person's feedback, then the employee's rewrite of its principles.

`principles.md` has two parts: the working principles (everything before the first
`## 1:1 with ` heading) and the record of one-on-ones below them.

1. `record`: the person's words are appended verbatim under `## 1:1 with <person>,
   <date>`, as a commit by that person (`Aoi-Actor: human:<name>`).
2. `reflect` + `commit_rewrite`, for employees that can reflect (backend `claude`, unless
   its `reflect` option is false): one short claude turn, whose system prompt holds the
   current principles and the feedback, returns a concise rewritten principles list; it
   replaces the first part only, as a second commit by the agent
   (`Aoi-Actor: agent:<id>`). The people's words below are never rewritten, so
   `git blame` attributes every line to whoever wrote it, and `git revert` of either
   commit undoes just that step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

from aoi_git.domain.model import Actor, ActorKind, Employee
from aoi_git.errors import AoiError
from aoi_git.store.org_store import Store
from aoi_git.store.txn import Txn, commit

HEADING = "## 1:1 with "
REFLECT_TIMEOUT_S = 180.0
MAX_PRINCIPLES_CHARS = 8000


def principles_path(employee_id: str) -> str:
    return f"employees/{employee_id}/principles.md"


def can_reflect(emp: Employee) -> bool:
    return emp.backend.kind == "claude" and bool(emp.backend.options.get("reflect", True))


def split_principles(text: str) -> tuple[str, str]:
    """(working principles, the one-on-one record that follows them)."""
    m = re.search(r"(?m)^" + re.escape(HEADING), text)
    if m is None:
        return text, ""
    return text[: m.start()], text[m.start():]


def with_feedback(current: str, person: str, feedback: str, day: str) -> str:
    text = current if current.endswith("\n") or not current else current + "\n"
    return f"{text}\n{HEADING}{person}, {day}\n\n{feedback.strip()}\n"


def record(store: Store, emp: Employee, person: Actor, feedback: str,
           day: str | None = None) -> str:
    """Commit the person's words verbatim under a dated heading; returns the commit id."""
    if not feedback.strip():
        raise AoiError("the feedback is empty: aoi one-on-one EMPLOYEE \"what to change\"")
    day = day or dt.date.today().isoformat()
    path = principles_path(emp.id)

    def build(txn: Txn) -> None:
        current = (txn.view.read(path) or b"").decode("utf-8")
        txn.put_file(path, with_feedback(current, person.name, feedback, day).encode())
        txn.subject = f"aoi: 1:1 with {emp.id}: feedback from {person.name}"
        txn.trailers += [("Aoi-Employee", emp.id), ("Aoi-One-On-One", day)]

    oid, _ = commit(store, build, person)
    assert oid is not None
    return oid


@dataclass
class Reflection:
    text: str
    usage: dict[str, float] = field(default_factory=dict)


def system_prompt(emp: Employee, principles: str, person: str, feedback: str) -> str:
    return (
        f"You are {emp.name or emp.id}, employee {emp.id} ({emp.role}) of an organisation "
        "of AI agents. Below are your current working principles, then feedback from "
        f"{person} in a one-on-one.\n\n# Your current working principles\n\n"
        f"{principles.strip()}\n\n# Feedback from {person}\n\n{feedback.strip()}\n"
    )


REWRITE_PROMPT = (
    "Rewrite your working principles into a concise set that takes the feedback into "
    "account: a Markdown document starting with the heading `# Working principles`, then "
    "a numbered list of at most 10 short, concrete principles. Keep what still holds, "
    "merge duplicates, drop what the feedback contradicts. Answer with the Markdown only, "
    "without using any tools."
)


async def _ask_claude(emp: Employee, system: str) -> Reflection:
    from claude_agent_sdk import (
        AssistantMessage,
        ClaudeAgentOptions,
        ResultMessage,
        TextBlock,
        query,
    )

    from aoi_git.runtime.backends.claude_runner import cli_env

    texts: list[str] = []
    result: ResultMessage | None = None
    with tempfile.TemporaryDirectory(prefix="aoi-1on1-") as cwd:
        kwargs: dict[str, Any] = {
            "system_prompt": system, "cwd": cwd, "setting_sources": [], "tools": [],
            "allowed_tools": [], "max_turns": 1, "permission_mode": "dontAsk",
            "env": cli_env({"options": dict(emp.backend.options)}),
        }
        if emp.backend.model:
            kwargs["model"] = emp.backend.model
        async for msg in query(prompt=REWRITE_PROMPT, options=ClaudeAgentOptions(**kwargs)):
            if isinstance(msg, AssistantMessage):
                texts += [b.text for b in msg.content if isinstance(b, TextBlock) and b.text]
            elif isinstance(msg, ResultMessage):
                result = msg
    if result is None or result.is_error:
        detail = (result.result if result is not None else None) or "no result"
        raise AoiError(f"the reflection turn failed: {detail}")
    usage = result.usage or {}
    return Reflection(
        text=(result.result or "").strip() or (texts[-1].strip() if texts else ""),
        usage={"input_tokens": int(usage.get("input_tokens") or 0),
               "output_tokens": int(usage.get("output_tokens") or 0),
               "usd": float(result.total_cost_usd or 0.0)},
    )


def reflect(emp: Employee, principles: str, person: str, feedback: str) -> Reflection:
    """One short claude turn (no tools) that returns rewritten principles."""
    mine, _ = split_principles(principles)
    system = system_prompt(emp, mine, person, feedback)
    try:
        return asyncio.run(asyncio.wait_for(_ask_claude(emp, system), REFLECT_TIMEOUT_S))
    except AoiError:
        raise
    except Exception as exc:  # the SDK's errors: the person's commit stands regardless
        raise AoiError(f"the reflection turn failed: {type(exc).__name__}: {exc}") from None


def clean_rewrite(text: str) -> str:
    """The Markdown of a rewrite: code fences unwrapped, any 1:1 record dropped."""
    text = text.strip()
    m = re.match(r"^```[a-zA-Z]*\n(.*?)\n```$", text, re.S)
    if m:
        text = m.group(1).strip()
    text, _ = split_principles(text)
    text = text.strip()[:MAX_PRINCIPLES_CHARS]
    if not text:
        raise AoiError("the reflection turn returned no principles: nothing rewritten")
    if not text.startswith("#"):
        text = "# Working principles\n\n" + text
    return text + "\n"


def commit_rewrite(store: Store, emp: Employee, rewrite: Reflection, feedback_commit: str) -> \
        str | None:
    """Replace the principles part with the rewrite, as the agent; None if nothing changed."""
    path = principles_path(emp.id)
    new_part = clean_rewrite(rewrite.text)

    def build(txn: Txn) -> None:
        current = (txn.view.read(path) or b"").decode("utf-8")
        _, record_part = split_principles(current)
        updated = new_part + ("\n" + record_part if record_part else "")
        if updated == current:
            return
        txn.put_file(path, updated.encode())
        txn.subject = f"aoi: 1:1 with {emp.id}: {emp.id} rewrote its principles"
        txn.body_lines.append(f"after the feedback in {feedback_commit[:12]}")
        txn.trailers += [("Aoi-Employee", emp.id), ("Aoi-Reflects-On", feedback_commit)]
        txn.add_cost(rewrite.usage)

    oid, _ = commit(store, build, Actor(ActorKind.AGENT, emp.id))
    return oid
