"""The claude runner, end to end: the real Claude CLI (bundled with claude-agent-sdk) runs
as a subprocess of the runner and talks to a scripted Messages API on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aoi_git.domain.model import Employee
from aoi_git.errors import AoiError
from aoi_git.runtime.backends.base import AgentConfig
from aoi_git.runtime.backends.claude import ClaudeBackend
from aoi_git.runtime.backends.script import ScriptBackend
from aoi_git.testing.fake_messages_api import (
    ApiError,
    ScriptedMessagesAPI,
    Text,
    ToolUse,
    Turn,
    offline_env,
    system_text,
    tool_results,
)

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-sonnet-4-5"
CONTEXT = "# You are eng-1\n\nPrinciple: marker-7f3a9c always write tests first.\n"


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    result: dict[str, Any] | None
    api: ScriptedMessagesAPI
    worktree: Path


@pytest.fixture
def run_runner(tmp_path: Path) -> Any:
    def run(
        script: list[Turn],
        *,
        task: dict[str, Any] | None = None,
        config: AgentConfig | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Run:
        worktree = tmp_path / "worktree"
        home = tmp_path / "home"
        worktree.mkdir(exist_ok=True)
        home.mkdir(exist_ok=True)
        task = task or {"id": "t-1", "title": "Say hello", "description": "Create hello.txt."}
        config = config or AgentConfig(
            employee="eng-1", role="engineer", model=MODEL, tools=["Read", "Write"]
        )
        files = {
            "AOI_TASK_FILE": tmp_path / "task.json",
            "AOI_CONTEXT_FILE": tmp_path / "context.md",
            "AOI_AGENT_CONFIG": tmp_path / "agent.json",
            "AOI_RESULT_FILE": tmp_path / "result.json",
        }
        files["AOI_TASK_FILE"].write_text(json.dumps(task))
        files["AOI_CONTEXT_FILE"].write_text(CONTEXT)
        files["AOI_AGENT_CONFIG"].write_text(json.dumps(config.to_json()))
        with ScriptedMessagesAPI(script) as api:
            env = {k: v for k, v in os.environ.items() if not k.startswith("AOI_")}
            env.update(offline_env(api.base_url, str(home)))
            env.update({k: str(v) for k, v in files.items()})
            env["AOI_TASK_ID"] = str(task["id"])
            env["AOI_ORG_DIR"] = str(tmp_path)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
            env.update(extra_env or {})
            proc = subprocess.run(
                [sys.executable, "-m", "aoi_git.runtime.backends.claude_runner"],
                cwd=worktree,
                env=env,
                capture_output=True,
                text=True,
                timeout=100,
            )
        result_file = files["AOI_RESULT_FILE"]
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        return Run(proc, result, api, worktree)

    return run


def report(summary: str, outcome: str = "completed", **extra: Any) -> ToolUse:
    return ToolUse("mcp__aoi__report_result", {"outcome": outcome, "summary": summary, **extra})


def ok(run: Run) -> dict[str, Any]:
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    assert run.result is not None, run.proc.stderr[-3000:]
    return run.result


def test_write_file_and_report(run_runner: Any, tmp_path: Path) -> None:
    target = tmp_path / "worktree" / "hello.txt"
    run = run_runner([
        ToolUse("Write", {"file_path": str(target), "content": "hello, world\n"}),
        report("Wrote hello.txt"),
        Text("Finished."),
    ])
    result = ok(run)
    assert target.read_text() == "hello, world\n"
    assert result["outcome"] == "completed"
    assert result["summary"] == "Wrote hello.txt"
    assert "error" not in result
    # three model calls at 100 input / 20 output tokens each
    assert result["usage"]["input_tokens"] == 300
    assert result["usage"]["output_tokens"] == 60
    assert result["usage"]["usd"] > 0
    assert not run.api.exhausted
    # the Write succeeded from the model's point of view too
    write_result = tool_results(run.api.requests[1])
    assert len(write_result) == 1 and not write_result[0]["is_error"], write_result


def test_create_subtasks(run_runner: Any) -> None:
    subtasks = [
        {"key": "api", "title": "Build the API", "description": "REST endpoints",
         "assignee": "eng-2", "depends_on": []},
        {"key": "ui", "title": "Build the UI", "description": "Pages",
         "assignee": "role:engineer", "depends_on": ["api"]},
    ]
    run = run_runner([
        ToolUse("mcp__aoi__create_subtasks", {"subtasks": subtasks}),
        report("Split into api and ui"),
        Text("ok"),
    ])
    result = ok(run)
    assert result["outcome"] == "completed"
    assert [s["key"] for s in result["subtasks"]] == ["api", "ui"]
    assert result["subtasks"][1]["depends_on"] == ["api"]
    assert result["subtasks"][1]["assignee"] == "role:engineer"
    assert result["subtasks"][0]["title"] == "Build the API"
    confirmation = tool_results(run.api.requests[1])[0]
    assert "2 subtask" in confirmation["text"]


def test_ask_human_blocks(run_runner: Any) -> None:
    run = run_runner([
        ToolUse("mcp__aoi__ask_human", {"question": "Which database should we use?"}),
        Text("Waiting for an answer."),
    ])
    result = ok(run)
    assert result["outcome"] == "blocked"
    assert result["question"] == "Which database should we use?"


def test_submit_review_reject(run_runner: Any) -> None:
    task = {"id": "t-9", "kind": "review", "subject": "t-1", "title": "Review t-1"}
    run = run_runner(
        [
            ToolUse("mcp__aoi__submit_review",
                    {"decision": "reject", "feedback": "hello.txt lacks a trailing newline"}),
            report("Reviewed t-1: rejected"),
            Text("done"),
        ],
        task=task,
    )
    result = ok(run)
    assert result["review"] == {
        "decision": "reject", "feedback": "hello.txt lacks a trailing newline"
    }
    assert result["outcome"] == "completed"
    prompt = json.dumps(run.api.requests[0]["messages"])
    assert "submit_review" in prompt and "t-1" in prompt


def test_no_report_uses_final_text(run_runner: Any) -> None:
    run = run_runner([Text("I looked around; nothing needed changing.")])
    result = ok(run)
    assert result["outcome"] == "completed"
    assert result["summary"] == "I looked around; nothing needed changing."
    assert result["usage"]["input_tokens"] == 100
    assert result["usage"]["output_tokens"] == 20


def test_api_error_is_a_failed_outcome(run_runner: Any) -> None:
    run = run_runner([ApiError(500, "scripted overload")])
    result = ok(run)  # exit status 0: the result file says it failed
    assert result["outcome"] == "failed"
    assert "500" in result["summary"]
    assert "500" in result["error"]
    assert not run.api.exhausted  # max retries 0: one request, no retry


def test_max_turns_is_a_failed_outcome(run_runner: Any, tmp_path: Path) -> None:
    config = AgentConfig(employee="eng-1", role="engineer", model=MODEL,
                         tools=["Read"], max_turns=1)
    run = run_runner(
        [ToolUse("Read", {"file_path": str(tmp_path / "context.md")}), Text("never reached")],
        config=config,
    )
    result = ok(run)
    assert result["outcome"] == "failed"
    assert "error_max_turns" in result["error"]


def test_max_tokens_interrupts_the_run(run_runner: Any, tmp_path: Path) -> None:
    config = AgentConfig(employee="eng-1", role="engineer", model=MODEL,
                         tools=["Read"], max_tokens=250)
    read = {"file_path": str(tmp_path / "context.md")}
    script: list[Turn] = [ToolUse("Read", read) for _ in range(6)]
    run = run_runner([*script, Text("never reached")], config=config)
    result = ok(run)
    assert result["outcome"] == "failed"
    assert "token budget exceeded" in result["error"]
    assert len(run.api.requests) <= 4  # stopped on the third answer, not after six


def test_bash_pattern_denied_by_hook(run_runner: Any, tmp_path: Path) -> None:
    config = AgentConfig(employee="eng-1", role="engineer", model=MODEL,
                         tools=["Read", "Write", "Bash(echo:*)"])
    run = run_runner(
        [ToolUse("Bash", {"command": "touch should_not_exist"}), report("tried"), Text("x")],
        config=config,
    )
    result = ok(run)
    assert not (run.worktree / "should_not_exist").exists()
    denied = tool_results(run.api.requests[1])
    assert len(denied) == 1 and denied[0]["is_error"], denied
    assert "aoi: Bash is limited to commands matching echo:*" in denied[0]["text"]
    assert "touch should_not_exist" in denied[0]["text"]
    assert result["outcome"] == "completed"


def test_bash_pattern_allows_matching_command(run_runner: Any) -> None:
    config = AgentConfig(employee="eng-1", role="engineer", model=MODEL,
                         tools=["Read", "Bash(echo:*)"])
    run = run_runner(
        [ToolUse("Bash", {"command": "echo marker-42"}), report("echoed"), Text("x")],
        config=config,
    )
    ok(run)
    echoed = tool_results(run.api.requests[1])
    assert len(echoed) == 1 and not echoed[0]["is_error"], echoed
    assert "marker-42" in echoed[0]["text"]


def test_tool_outside_the_list_is_unavailable(run_runner: Any) -> None:
    run = run_runner([ToolUse("Bash", {"command": "touch should_not_exist"}), Text("ok")])
    ok(run)
    assert not (run.worktree / "should_not_exist").exists()
    offered = {t["name"] for t in run.api.requests[0]["tools"]}
    assert {"Read", "Write", "mcp__aoi__report_result", "mcp__aoi__ask_human"} <= offered
    assert "Bash" not in offered
    denied = tool_results(run.api.requests[1])
    assert len(denied) == 1 and denied[0]["is_error"]
    assert "Bash" in denied[0]["text"]


def test_system_prompt_is_the_context(run_runner: Any) -> None:
    seen: list[str] = []

    def check(request: dict[str, Any]) -> Turn:
        seen.append(system_text(request))
        return report("ok")

    run = run_runner([check, Text("done")])
    result = ok(run)
    assert result["outcome"] == "completed"
    assert "marker-7f3a9c always write tests first" in seen[0]
    first_user = json.dumps(run.api.requests[0]["messages"][0])
    assert "Say hello" in first_user and "Create hello.txt." in first_user
    assert "report_result" in first_user


def test_runner_env_reaches_the_cli(run_runner: Any, tmp_path: Path) -> None:
    # The requests arriving at our server prove ANTHROPIC_BASE_URL came through; the key too.
    run = run_runner([Text("hi")], extra_env={"ANTHROPIC_API_KEY": "key-from-daemon-env"})
    ok(run)
    assert len(run.api.requests) == 1
    assert run.api.headers[0].get("x-api-key") == "key-from-daemon-env"
    assert any(p.startswith("POST /v1/messages") for p in run.api.paths)
    # the CLI wrote its state into the HOME we gave it
    assert (tmp_path / "home" / ".claude.json").exists() or (tmp_path / "home" / ".claude").exists()


def test_reflection_becomes_a_lesson(run_runner: Any) -> None:
    lesson = "Next time I would read the existing files before writing."

    def reflection(request: dict[str, Any]) -> Turn:
        last = json.dumps(request["messages"][-1])
        assert "what did you learn" in last, last
        return Text(lesson)

    config = AgentConfig(employee="eng-1", role="engineer", model=MODEL,
                         tools=["Read", "Write"], reflect=True)
    run = run_runner(
        [report("did it", lessons=["keep it small"]), Text("Done."), reflection],
        config=config,
    )
    result = ok(run)
    assert result["outcome"] == "completed"
    assert result["summary"] == "did it"
    assert result["lessons"] == ["keep it small", lesson]
    assert result["usage"]["input_tokens"] == 300  # two task calls + the reflection
    assert not run.api.exhausted


def test_reflection_failure_does_not_fail_the_task(run_runner: Any) -> None:
    config = AgentConfig(employee="eng-1", role="engineer", model=MODEL,
                         tools=["Read"], reflect=True)
    run = run_runner([Text("All good."), ApiError(500, "reflection broke")], config=config)
    result = ok(run)
    assert result["outcome"] == "completed"
    assert result["summary"] == "All good."
    assert "lessons" not in result


def test_missing_contract_variable_exits_nonzero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOI_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "aoi_git.runtime.backends.claude_runner"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "AOI_RESULT_FILE" in proc.stderr


def test_backends_commands() -> None:
    emp = Employee.from_dict({"id": "eng-1", "role": "engineer", "backend": {"kind": "claude"}})
    runner = "aoi_git.runtime.backends.claude_runner"
    assert ClaudeBackend().command(emp) == [sys.executable, "-m", runner]
    assert ClaudeBackend().environment(emp) == {}
    scripted = Employee.from_dict(
        {"id": "bot", "role": "engineer", "backend": {"kind": "script", "command": ["sh", "a.sh"]}}
    )
    assert ScriptBackend().command(scripted) == ["sh", "a.sh"]
    with pytest.raises(AoiError, match="backend.command"):
        ScriptBackend().command(Employee.from_dict({"id": "bot", "role": "engineer"}))
