"""Talent markets: search ranking and its explanation, list, persona import, extra markets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from kit import PERSON_ACTOR, CliRun, git

from aoi_git.errors import AoiError
from aoi_git.evolution import market
from aoi_git.resources import resource_dir

BUNDLED = resource_dir("market")

PERSONA = """\
---
name: Rust Pro
description: Writes safe, idiomatic Rust with ownership-aware APIs and thorough tests.
tools: Read, Write, Edit, Bash
model: sonnet
color: orange
---
You are a Rust expert.

- Prefer borrowing over cloning.
- Run `cargo clippy` and `cargo test` before you report.
"""


def test_bundled_market_loads_every_package() -> None:
    cat = market.load_catalogue(None, None)
    assert cat.problems == []
    assert len(cat.packages) >= 12
    se = cat.find("software-engineer")
    assert se is not None and se.market == "bundled"
    assert {s.name for s in se.skills} == {"implement-change", "debug-failure"}
    assert all(s.description for s in se.skills)


@pytest.mark.parametrize(("query", "first"), [
    ("python backend engineer", "software-engineer"),
    ("threat model audit", "security-reviewer"),
    ("ci pipeline docker", "devops-engineer"),
    ("write the docs and release notes", "technical-writer"),
    ("qa", "qa-engineer"),
])
def test_search_ranks_the_right_talent_first(query: str, first: str) -> None:
    matches = market.search(market.load_catalogue(None, None).packages, query)
    assert matches[0].package.id == first
    assert matches[0].score > matches[1].score if len(matches) > 1 else True


def test_explain_shows_each_fields_contribution() -> None:
    [top, *_] = market.search(market.load_catalogue(None, None).packages,
                              "python backend engineer")
    assert top.fields["tags"].terms == ("python", "backend")
    assert top.fields["role"].score > 0 and top.bonus == market.ROLE_BONUS
    total = sum(fs.score for fs in top.fields.values()) + top.bonus
    assert top.score == pytest.approx(total)
    assert "tags" in top.explain() and "role match" in top.explain()


def test_cli_search_explain_and_json(org_dir: Path, cli: CliRun) -> None:
    out = cli(org_dir, "market", "search", "threat model audit", "--explain")
    assert out.exit_code == 0, out.output
    first = out.stdout.splitlines()[0]
    assert "security-reviewer" in first
    assert "tags" in out.stdout.splitlines()[1] and "skills" in out.stdout.splitlines()[1]
    out = cli(org_dir, "market", "search", "python backend engineer", "--json", "--explain")
    data = json.loads(out.stdout)
    assert data[0]["id"] == "software-engineer"
    assert set(data[0]["explain"]) == {"role", "tags", "skills", "description", "role_bonus"}
    assert data[0]["explain"]["tags"]["weight"] == 2.5
    assert data[0]["score"] >= data[1]["score"]
    bad = cli(org_dir, "market", "search", "the and of")
    assert bad.exit_code == 1 and "no searchable words" in bad.stderr


def test_cli_list(org_dir: Path, cli: CliRun) -> None:
    out = cli(org_dir, "market", "list", "--json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    ids = [r["id"] for r in rows]
    assert len(ids) >= 12 and "security-reviewer" in ids
    assert {r["market"] for r in rows} == {"bundled"}
    assert set(rows[0]) >= {"id", "role", "description", "tags", "skills", "backend", "tools"}
    text = cli(org_dir, "market", "list")
    assert text.exit_code == 0 and "software-engineer" in text.stdout


def test_cli_works_outside_an_org(tmp_path: Path, cli: CliRun) -> None:
    out = cli(tmp_path, "market", "search", "security")
    assert out.exit_code == 0 and "security-reviewer" in out.stdout


# ----------------------------------------------------------------------------- import

def talent_schema() -> dict[str, object]:
    return json.loads((resource_dir("schemas") / "talent.schema.json").read_text())  # type: ignore[no-any-return]


def test_persona_becomes_a_valid_talent_package() -> None:
    tid, files = market.persona_package(PERSONA, source="rust-pro.md")
    assert tid == "rust-pro"
    talent = yaml.safe_load(files["talent.yaml"])
    jsonschema.validate(talent, talent_schema())
    assert talent["role"] == "rust-pro"
    assert talent["tools"] == ["Read", "Write", "Edit", "Bash"]
    assert talent["backend"] == {"kind": "claude", "model": "sonnet"}
    assert files["prompt.md"].decode().startswith("You are a Rust expert.")
    assert "cargo clippy" in files["prompt.md"].decode()


@pytest.mark.parametrize(("text", "error"), [
    ("no front matter", "no YAML front matter"),
    ("---\ndescription: x\n---\nbody", "no `name:`"),
    ("---\nname: x-y\n---\nbody", "no `description:`"),
])
def test_bad_personas_are_refused(text: str, error: str) -> None:
    with pytest.raises(AoiError, match=error):
        market.persona_package(text, source="p.md")


def test_cli_import_commits_a_package(org_dir: Path, cli: CliRun, tmp_path: Path) -> None:
    persona = tmp_path / "rust-pro.md"
    persona.write_text(PERSONA)
    out = cli(org_dir, "market", "import", str(persona))
    assert out.exit_code == 0, out.output
    assert "talents/rust-pro/" in out.stdout
    assert "will not get" in out.stdout  # its role has no gated Write/Edit/Bash in aoi.yaml
    folder = org_dir / "talents" / "rust-pro"
    jsonschema.validate(yaml.safe_load((folder / "talent.yaml").read_text()), talent_schema())
    assert (folder / "prompt.md").read_text().startswith("You are a Rust expert.")
    msg = git(org_dir, "log", "-1", "--format=%B")
    assert msg.startswith("aoi: import talent rust-pro from rust-pro.md")
    assert f"Aoi-Actor: {PERSON_ACTOR}" in msg
    assert git(org_dir, "status", "--porcelain") == ""
    assert cli(org_dir, "validate").exit_code == 0
    again = cli(org_dir, "market", "import", str(persona))
    assert again.exit_code == 1 and "exists already" in again.stderr
    other = cli(org_dir, "market", "import", str(persona), "--id", "rust-2")
    assert other.exit_code == 0 and (org_dir / "talents" / "rust-2" / "talent.yaml").exists()


# ------------------------------------------------------------------------ extra markets

def make_market_repo(tmp_path: Path) -> Path:
    """A bare git repository holding one talent package."""
    work = tmp_path / "market-src"
    pkg = work / "kotlin-dev"
    (pkg / "skills" / "android-build").mkdir(parents=True)
    (pkg / "talent.yaml").write_text(yaml.safe_dump({
        "id": "kotlin-dev", "role": "mobile", "description": "Builds Android apps in Kotlin.",
        "tags": ["kotlin", "android", "mobile"], "backend": {"kind": "claude"},
        "tools": ["Read", "Write"], "skills": ["android-build"]}))
    (pkg / "prompt.md").write_text("# Kotlin developer\n\n## How you work\n\n- Use Gradle.\n")
    (pkg / "skills" / "android-build" / "SKILL.md").write_text(
        "---\nname: android-build\ndescription: Build and sign an Android APK with Gradle.\n"
        "---\n\n# Android build\n")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "a market")
    bare = tmp_path / "acme-market.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def set_markets(org_dir: Path, markets: list[str]) -> None:
    cfg = org_dir / "aoi.yaml"
    text = cfg.read_text().replace("markets: []", "markets: " + json.dumps(markets))
    cfg.write_text(text)
    git(org_dir, "commit", "-q", "-am", "add markets")


def test_an_extra_git_market_is_cloned_and_searched(org_dir: Path, cli: CliRun,
                                                      tmp_path: Path) -> None:
    bare = make_market_repo(tmp_path)
    set_markets(org_dir, [str(bare)])
    out = cli(org_dir, "market", "search", "android kotlin app", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data[0]["id"] == "kotlin-dev" and data[0]["market"] == str(bare)
    clones = list((org_dir / ".aoi" / "markets").iterdir())
    assert len(clones) == 1 and (clones[0] / "kotlin-dev" / "talent.yaml").is_file()
    assert git(org_dir, "status", "--porcelain") == ""  # .aoi/ is not history
    # a new commit in the market arrives with --refresh
    work = tmp_path / "market-src"
    shutil.copytree(work / "kotlin-dev", work / "swift-dev")
    meta = work / "swift-dev" / "talent.yaml"
    meta.write_text(meta.read_text().replace("kotlin-dev", "swift-dev")
                    .replace("Kotlin", "Swift").replace("kotlin", "swift"))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "swift")
    git(work, "push", "-q", str(bare), "main")
    stale = cli(org_dir, "market", "list", "--json")
    assert "swift-dev" not in [r["id"] for r in json.loads(stale.stdout)]
    fresh = cli(org_dir, "market", "list", "--json", "--refresh")
    assert "swift-dev" in [r["id"] for r in json.loads(fresh.stdout)]
    # a market that cannot be reached keeps its cached copy
    bare.rename(tmp_path / "moved.git")
    offline = cli(org_dir, "market", "list", "--json", "--refresh")
    assert offline.exit_code == 0 and "could not fetch" in offline.stderr
    assert "swift-dev" in [r["id"] for r in json.loads(offline.stdout)]
    # and a talent from it can be hired
    hired = cli(org_dir, "hire", "kotlin-dev", "--as", "mob-1")
    assert hired.exit_code == 0, hired.output
    assert (org_dir / "talents" / "kotlin-dev" / "skills" / "android-build" / "SKILL.md").is_file()


def test_a_folder_market_relative_to_the_org(org_dir: Path, cli: CliRun,
                                             tmp_path: Path) -> None:
    folder = org_dir / "markets" / "ours"
    shutil.copytree(BUNDLED / "security-reviewer", folder / "pentester")
    meta = folder / "pentester" / "talent.yaml"
    meta.write_text(meta.read_text().replace("id: security-reviewer", "id: pentester")
                    .replace("role: security", "role: pentest"))
    git(org_dir, "add", "-A")
    set_markets(org_dir, ["markets/ours", "no/such/folder"])
    out = cli(org_dir, "market", "search", "pentest", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["id"] == "pentester"
    assert "no/such/folder" in out.stderr  # reported, not fatal


def test_the_bundled_market_wins_an_id(tmp_path: Path) -> None:
    folder = tmp_path / "dup"
    shutil.copytree(BUNDLED / "architect", folder / "architect")
    from aoi_git.domain.model import OrgConfig

    cat = market.load_catalogue(tmp_path, OrgConfig(markets=(str(folder),)))
    found = cat.find("architect")
    assert found is not None and found.market == "bundled"
    assert [p.market for p in cat.packages if p.id == "architect"] == ["bundled", str(folder)]
