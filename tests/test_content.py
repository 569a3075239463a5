"""The shipped content: JSON schemas, the org template and the bundled talent market."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).parents[1]
SCHEMAS = ROOT / "schemas"
TEMPLATE = ROOT / "org_template"
MARKET = ROOT / "market"

SCHEMA_FILES = sorted(SCHEMAS.glob("*.schema.json"))
EXPECTED_SCHEMAS = {"task", "profile", "talent", "aoi", "result", "sop"}


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def errors(name: str, data: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator(name).iter_errors(data)
    ]


def front_matter(path: Path) -> tuple[dict[str, Any], str]:
    text = path.read_text()
    assert text.startswith("---\n"), f"{path}: no YAML front matter"
    head, sep, body = text[4:].partition("\n---\n")
    assert sep, f"{path}: front matter is not closed by ---"
    data = yaml.safe_load(head)
    assert isinstance(data, dict), f"{path}: front matter is not a mapping"
    return data, body


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def market_talents() -> list[Path]:
    return sorted(p for p in MARKET.iterdir() if (p / "talent.yaml").is_file())


def template_talents() -> list[Path]:
    return sorted(p for p in (TEMPLATE / "talents").iterdir() if p.is_dir())


def all_talents() -> list[Path]:
    return template_talents() + market_talents()


# ------------------------------------------------------------------ schemas


def test_all_schemas_present() -> None:
    assert {p.name.removesuffix(".schema.json") for p in SCHEMA_FILES} >= EXPECTED_SCHEMAS


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_is_valid(path: Path) -> None:
    data = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert data["$id"] and data["title"] and data["description"]


def _walk_objects(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every sub-schema that declares properties, with a readable location."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((where, node))
        for key, value in node.items():
            found.extend(_walk_objects(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_walk_objects(value, f"{where}/{i}"))
    return found


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_every_property_is_described_and_objects_are_closed(path: Path) -> None:
    data = json.loads(path.read_text())
    open_ok = {"backend", "extra"}  # plugin options / aoi bookkeeping
    for where, obj in _walk_objects(data, path.name):
        for prop, sub in obj["properties"].items():
            assert sub.get("description"), f"{where}/properties/{prop} has no description"
        last = where.rsplit("/", 1)[-1]
        if last not in open_ok:
            assert obj.get("additionalProperties") is False, f"{where} accepts unknown keys"


# ------------------------------------------------------------------ task schema

EXAMPLE_TASK = {
    "id": "t-4k2m9x7q3a",
    "title": "Build the login API",
    "description": "Free text for the assignee.\n",
    "kind": "work",
    "status": "pending",
    "assignee": "eng-1",
    "reviewer": "coo",
    "parent": "t-9q8w7e6r5t",
    "depends_on": ["t-1a2b3c4d5e"],
    "priority": 0,
    "labels": [],
    "budget": {"usd": 2.0, "tokens": 400000, "timeout_s": 1800},
    "attempts": 0,
    "review_rounds": 0,
    "retry_at": None,
    "feedback": [],
    "question": None,
    "answer": None,
    "subject": None,
    "result": {
        "summary": "Login endpoint with tests.",
        "branch": "aoi/t-4k2m9x7q3a",
        "commit": "0123456789abcdef0123456789abcdef01234567",
    },
    "cost": {"input_tokens": 0, "output_tokens": 0, "usd": 0.0, "seconds": 0.0},
}


def test_minimal_task_passes() -> None:
    assert errors("task", {"title": "x"}) == []


def test_spec_example_task_passes() -> None:
    assert errors("task", EXAMPLE_TASK) == []


def test_task_round_trips_through_the_model() -> None:
    model = pytest.importorskip("aoi_git.domain.model")
    task = model.Task.from_dict(EXAMPLE_TASK)
    assert errors("task", task.to_dict()) == []


def test_task_with_unknown_key_fails() -> None:
    assert errors("task", {"title": "x", "owner": "eng-1"})


def test_task_without_title_fails() -> None:
    assert errors("task", {"id": "abc"})


@pytest.mark.parametrize(
    "bad",
    [
        {"title": "x", "id": "Upper-Case"},
        {"title": "x", "id": "a"},
        {"title": "x", "status": "done"},
        {"title": "x", "kind": "chore"},
        {"title": "x", "attempts": -1},
        {"title": "x", "depends_on": ["a1", "a1"]},
        {"title": "x", "budget": {"usd": 1, "dollars": 2}},
        {"title": "x", "feedback": [{"from": "coo"}]},
        {"title": "x", "feedback": [{"text": "t", "kind": "rant"}]},
        {"title": "x", "result": {"summary": "s", "diff": "..."}},
        {"title": "x", "result": {"review": {"decision": "maybe"}}},
        {"title": "x", "cost": {"usd": 1, "euros": 1}},
    ],
)
def test_task_invalid_values_fail(bad: dict[str, Any]) -> None:
    assert errors("task", bad)


def test_task_feedback_forms_and_extra_pass() -> None:
    task = {
        "title": "x",
        "status": "failed",
        "retry_at": "2025-01-01T00:00:00Z",
        "feedback": [
            "plain text",
            {"from": "coo", "kind": "review", "text": "add tests", "at": "2025-01-01T00:00:00Z"},
            {"text": "timeout after 1800 s", "kind": "error"},
        ],
        "result": {"outcome": "failed", "error": "timeout", "branch": None, "commit": None},
        "extra": {"escalation": "t-abc", "subtasks": ["t-1", "t-2"], "daily": False,
                  "hire": {"talent": "qa-engineer", "as": "qa-1"}, "a-later-key": {"x": 1}},
    }
    assert errors("task", task) == []


# ------------------------------------------------------------------ result / sop schemas


def test_spec_example_result_passes() -> None:
    result = {
        "outcome": "completed",
        "summary": "what was done",
        "subtasks": [
            {"key": "api", "title": "Build the API", "description": "...", "assignee": "eng-1"},
            {"key": "docs", "title": "Document it", "assignee": "role:writer",
             "depends_on": ["api"]},
        ],
        "question": None,
        "review": {"decision": "accept", "feedback": "..."},
        "usage": {"input_tokens": 0, "output_tokens": 0, "usd": 0.0},
        "lessons": ["run the tests before reporting"],
        "hire": {"talent": "qa-engineer", "as": "qa-1", "reason": "no one tests"},
    }
    assert errors("result", result) == []
    assert errors("result", {**result, "surprise": 1})
    assert errors("result", {"outcome": "done"})
    assert errors("result", {"subtasks": [{"key": "a1"}]})


def test_sops_front_matter_validates() -> None:
    sops = sorted((TEMPLATE / "sops").glob("*.md"))
    assert sops
    for path in sops:
        data, body = front_matter(path)
        assert errors("sop", data) == [], rel(path)
        assert body.strip(), rel(path)


# ------------------------------------------------------------------ org template


def test_template_aoi_yaml_validates() -> None:
    path = TEMPLATE / "aoi.yaml"
    assert path.read_text().startswith("# yaml-language-server: $schema=./schemas/aoi.schema.json")
    data = load_yaml(path)
    assert errors("aoi", data) == []
    assert data["ceo"] in data["humans"]


def test_template_aoi_yaml_loads_into_the_model() -> None:
    model = pytest.importorskip("aoi_git.domain.model")
    cfg = model.OrgConfig.from_dict(load_yaml(TEMPLATE / "aoi.yaml"))
    assert cfg.limits.max_agents == 4
    assert "Bash" in cfg.gated_tools


FOUNDERS = ["coo", "hr", "ea", "cso"]


@pytest.mark.parametrize("emp", FOUNDERS)
def test_founding_employee(emp: str) -> None:
    folder = TEMPLATE / "employees" / emp
    profile_path = folder / "profile.yaml"
    assert profile_path.read_text().startswith(
        "# yaml-language-server: $schema=../../schemas/profile.schema.json"
    )
    profile = load_yaml(profile_path)
    assert errors("profile", profile) == []
    assert profile["id"] == emp and profile["role"] == emp and profile["talent"] == emp
    assert (TEMPLATE / "talents" / profile["talent"] / "talent.yaml").is_file()
    assert (folder / "principles.md").read_text().strip()
    assert (folder / "journal.md").read_text().strip()


def test_founding_tools_are_permitted_by_aoi_yaml() -> None:
    cfg = load_yaml(TEMPLATE / "aoi.yaml")
    base = set(cfg["tools"]["base"])
    gated = cfg["tools"]["gated"]
    for emp in FOUNDERS:
        profile = load_yaml(TEMPLATE / "employees" / emp / "profile.yaml")
        for tool in profile["tools"]:
            assert tool in base or profile["role"] in gated.get(tool, []), (emp, tool)


def test_market_roles_may_use_their_tools() -> None:
    cfg = load_yaml(TEMPLATE / "aoi.yaml")
    base = set(cfg["tools"]["base"])
    gated = cfg["tools"]["gated"]
    for folder in market_talents():
        talent = load_yaml(folder / "talent.yaml")
        for tool in talent.get("tools", []):
            assert tool in base or talent["role"] in gated.get(tool, []), (folder.name, tool)


def test_vscode_settings_map_the_schemas() -> None:
    settings = json.loads((TEMPLATE / ".vscode" / "settings.json").read_text())
    mapping = settings["yaml.schemas"]
    for schema_path in mapping:
        assert (ROOT / schema_path.removeprefix("./")).is_file(), schema_path
    ext = json.loads((TEMPLATE / ".vscode" / "extensions.json").read_text())
    assert "redhat.vscode-yaml" in ext["recommendations"]


def test_template_git_files() -> None:
    assert ".aoi/" in (TEMPLATE / ".gitignore").read_text().split()
    assert "tasks/**/*.yaml merge=aoi-task" in (TEMPLATE / ".gitattributes").read_text()
    assert not (TEMPLATE / "schemas").exists()  # aoi init copies schemas/ in


# ------------------------------------------------------------------ talents (template + market)


@pytest.mark.parametrize("folder", all_talents(), ids=lambda p: rel(p))
def test_talent_package(folder: Path) -> None:
    talent = load_yaml(folder / "talent.yaml")
    assert errors("talent", talent) == [], rel(folder)
    assert talent["id"] == folder.name
    assert (folder / "prompt.md").read_text().strip()
    skill_dirs = sorted(p.name for p in (folder / "skills").iterdir() if p.is_dir())
    assert skill_dirs, f"{rel(folder)} has no skills"
    assert sorted(talent.get("skills", [])) == skill_dirs
    for name in skill_dirs:
        data, body = front_matter(folder / "skills" / name / "SKILL.md")
        assert data.get("name") == name, f"{rel(folder)}/skills/{name}: name differs from folder"
        assert isinstance(data.get("description"), str) and data["description"].strip()
        assert len(data["description"]) <= 1024
        assert body.strip()


@pytest.mark.parametrize("folder", template_talents(), ids=lambda p: p.name)
def test_template_prompt_length(folder: Path) -> None:
    lines = (folder / "prompt.md").read_text().splitlines()
    assert 20 <= len(lines) <= 40, f"{rel(folder)}/prompt.md has {len(lines)} lines"


def test_market_has_the_catalogue() -> None:
    ids = {p.name for p in market_talents()}
    expected = {
        "software-engineer", "code-reviewer", "architect", "qa-engineer", "researcher",
        "technical-writer", "data-analyst", "designer", "devops-engineer", "product-manager",
        "security-reviewer", "marketing",
    }
    assert expected <= ids
    assert not ids & {"coo", "hr", "ea", "cso"}
    roles = [load_yaml(p / "talent.yaml")["role"] for p in market_talents()]
    assert len(roles) == len(set(roles)), "two market talents share a role"


def test_talent_model_reads_market() -> None:
    model = pytest.importorskip("aoi_git.domain.model")
    for folder in market_talents():
        t = model.Talent.from_dict(
            load_yaml(folder / "talent.yaml"), prompt=(folder / "prompt.md").read_text()
        )
        assert t.id == folder.name and t.role and t.description and t.skills
