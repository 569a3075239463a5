"""The documents agree with the code: the lifecycle table, the CLI reference, the file
formats, the README's commands, and links that lead somewhere.

`python tests/test_docs.py` rewrites docs/cli.md from the commands' `--help`.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from aoi_git.cli import main
from aoi_git.domain.lifecycle import TRANSITIONS
from aoi_git.domain.model import ActorKind, Kind, Status

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CLI_REFERENCE = DOCS / "cli.md"
HELP_WIDTH = 100
CLI_HEADER = """# Command reference

Every command's `--help`, as it prints it. Every command works from any folder inside the
organisation, or with `-C DIR`. A mistake prints one line on stderr and exits with status
1. This page is generated: `python tests/test_docs.py` rewrites it, and the test suite
fails when it differs from `--help`.
"""


# ------------------------------------------------------------------ the CLI reference
def commands(cmd: click.Command = main, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every visible command's path, depth first, in the order `--help` lists them."""
    if getattr(cmd, "hidden", False):
        return
    yield path
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                yield from commands(sub, (*path, name))


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="aoi",
                                terminal_width=HELP_WIDTH)
    assert result.exit_code == 0, result.output
    return result.output.rstrip() + "\n"


def cli_reference() -> str:
    parts = [CLI_HEADER]
    for path in commands():
        parts.append(f"\n## {' '.join(('aoi', *path))}\n\n```text\n{help_text(path)}```\n")
    return "".join(parts)


def test_cli_reference_is_the_help_of_every_command() -> None:
    assert CLI_REFERENCE.read_text() == cli_reference(), (
        "docs/cli.md differs from the commands' --help: run `python tests/test_docs.py`")


def test_every_command_has_a_section_and_an_example() -> None:
    text = CLI_REFERENCE.read_text()
    for path in commands():
        if path:
            assert f"\n## aoi {' '.join(path)}\n" in text
        assert "Example" in help_text(path), f"`aoi {' '.join(path)}` help has no example"


def shell_examples() -> Iterator[tuple[str, list[str]]]:
    """Every `aoi ...` invocation in the sh blocks of the README and docs/: (line, argv)."""
    for page in markdown_files():
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                words = shlex.split(line, comments=True)
                start = 0
                for i, word in enumerate([*words, "&&"]):
                    if word in ("&&", "||", "|", ";"):
                        command, start = words[start:i], i + 1
                        if command and Path(command[0]).name == "aoi":
                            yield f"{page.relative_to(ROOT)}: {line.strip()}", command[1:]


def test_every_aoi_example_in_the_documents_names_real_commands_and_options() -> None:
    seen = 0
    for where, args in shell_examples():
        cmd: click.Command = main
        options = {"-C", "-h", "--help", "--version"}
        rest = list(args)
        while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
            sub = cmd.get_command(click.Context(cmd), rest[0])
            assert sub is not None and not sub.hidden, f"{where}: no command {rest[0]!r}"
            cmd, rest = sub, rest[1:]
            options = {"-h", "--help"}
        for param in cmd.params:
            if isinstance(param, click.Option):
                options.update(param.opts, param.secondary_opts)
        for word in rest:
            if word.startswith("-") and word != "-":
                assert word.split("=")[0] in options, f"{where}: {word} is not an option"
        seen += 1
    assert seen >= 10, "the README's examples were not found"


# ------------------------------------------------------------------ the lifecycle table
def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table whose header row starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_lifecycle_doc_table_is_the_transition_table() -> None:
    documented: dict[tuple[Status, Status], tuple[frozenset[ActorKind], frozenset[Kind], str]] = {}
    for sources, target, who, kinds, when in table_rows(
            (DOCS / "lifecycle.md").read_text(), "| from | to | who |"):
        actors = frozenset(ActorKind(a.strip()) for a in who.split(","))
        kind_set = frozenset(Kind) if kinds == "all" else frozenset(
            Kind(k.strip()) for k in kinds.split(","))
        for source in sources.split(","):
            key = (Status(source.strip()), Status(target))
            assert key not in documented, f"{key} is documented twice"
            documented[key] = (actors, kind_set, when)
    in_code = {key: (rule.actors, rule.kinds, rule.when) for key, rule in TRANSITIONS.items()}
    assert documented == in_code


# ------------------------------------------------------------------ file formats
def schema_keys(schema: dict[str, object], prefix: str = "") -> Iterator[str]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, sub in properties.items():
        yield prefix + name
        if isinstance(sub, dict):
            yield from schema_keys(sub, f"{prefix}{name}.")
            more = sub.get("additionalProperties")
            if isinstance(more, dict):
                yield from schema_keys(more, f"{prefix}{name}.<id>.")


def test_every_key_of_the_org_file_schemas_is_in_the_formats_doc() -> None:
    text = (DOCS / "formats.md").read_text()
    for name in ("aoi", "task", "profile", "talent", "sop"):
        schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        missing = [k for k in schema_keys(schema) if f"| `{k}` |" not in text]
        assert not missing, f"schemas/{name}.schema.json keys not in docs/formats.md: {missing}"


def test_every_result_field_is_in_the_agent_contract() -> None:
    text = (DOCS / "agents.md").read_text()
    schema = json.loads((ROOT / "schemas" / "result.schema.json").read_text())
    properties = schema["properties"]
    assert isinstance(properties, dict)
    missing = [k for k in properties if f"| `{k}` |" not in text]
    assert not missing, f"result fields not in docs/agents.md: {missing}"


def test_every_agent_environment_variable_is_in_the_agent_contract() -> None:
    text = (DOCS / "agents.md").read_text()
    runtime = "".join(p.read_text() for p in (ROOT / "aoi_git" / "runtime").rglob("*.py"))
    names = set(re.findall(r'"(AOI_[A-Z_]+)":', runtime))
    assert names, "the daemon sets no AOI_* variable?"
    missing = sorted(n for n in names if f"| `{n}` |" not in text)
    assert not missing, f"set by the daemon, not in docs/agents.md: {missing}"


def test_the_complete_agent_of_the_contract_runs_as_documented(
        org_dir: Path, run_aoi: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """The example of docs/agents.md, hired as documented, finishes a task with a real
    daemon: its summary becomes the task's, its file is merged into the base."""
    text = (DOCS / "agents.md").read_text()
    agent = re.search(r"## A complete agent\n\n```python\n(.*?)```", text, re.S)
    backend = re.search(r"`(backend: \{kind: script, command: .*?\})`", text, re.S)
    assert agent and backend
    (org_dir / "agents").mkdir()
    (org_dir / "agents" / "notes.py").write_text(agent.group(1))
    (org_dir / "employees" / "notes").mkdir()
    (org_dir / "employees" / "notes" / "profile.yaml").write_text(
        f"id: notes\nrole: writer\nreports_to: ceo\n{backend.group(1)}\n")
    subprocess.run(["git", "add", "-A"], cwd=org_dir, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "hire notes"], cwd=org_dir, check=True)
    new = run_aoi("task", "new", "Write notes", "--assignee", "notes", "--reviewer", "none",
                  "--description", "Three lines.", cwd=org_dir)
    assert new.returncode == 0, new.stderr
    task_id = new.stdout.strip()
    daemon = run_aoi("daemon", "--until-idle", cwd=org_dir)
    assert daemon.returncode == 0, daemon.stderr
    shown = json.loads(run_aoi("task", "show", task_id, "--json", cwd=org_dir).stdout)
    assert shown["status"] == "finished"
    assert shown["result"]["summary"] == "Wrote NOTES.md from the task description."
    assert (org_dir / "NOTES.md").read_text() == "# Write notes\n\nThree lines.\n"


def test_every_trailer_aoi_writes_is_in_the_git_rules() -> None:
    text = (DOCS / "git.md").read_text()
    names = {m for p in (ROOT / "aoi_git").rglob("*.py")
             for m in re.findall(r"\b(Aoi-[A-Z][A-Za-z-]*[a-z])\b(?!-)", p.read_text())}
    assert "Aoi-Task" in names and "Aoi-Cost-Usd" in names
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"trailers not in docs/git.md: {missing}"


# ------------------------------------------------------------------ README and links
def test_readme_test_command_is_the_ci_test_step() -> None:
    ci_steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if "pytest" in line and not line.lstrip().startswith("#")]
    assert ci_steps, ".ci/run has no pytest step"
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("\n## ")]
    assert "\n.ci/run\n" in head, "the README's first lines do not give `.ci/run`"
    for step in ci_steps:
        assert f"`{step}`" in head, f"the README's first lines do not name `{step}`"
    assert "aoi demo\n" in head


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md", *sorted(DOCS.glob("*.md"))]


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of the headings of a Markdown file."""
    out = set()
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_relative_links_lead_to_files_and_headings_that_exist() -> None:
    for page in markdown_files():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            assert dest.exists(), f"{page.relative_to(ROOT)}: link to missing {target}"
            if anchor and dest.suffix == ".md":
                assert anchor in anchors(dest), f"{page.relative_to(ROOT)}: no heading #{anchor}"


def test_nothing_cites_a_document_outside_the_repository() -> None:
    cited = re.compile("SP" + r"EC\b")  # split, so this file does not match itself
    folders = ("aoi_git", "tests", "docs", "market", "org_template", "examples",
               "benchmarks", "schemas", "hooks")
    files = [ROOT / "README.md", *(p for f in folders for p in (ROOT / f).rglob("*")
                                   if p.is_file() and p.suffix in {".py", ".md", ".yaml",
                                                                  ".json", ""})]
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in files
            for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
            if cited.search(line)]
    assert not hits, f"cite a document that is not in the repository: {hits}"


if __name__ == "__main__":
    CLI_REFERENCE.write_text(cli_reference())
    print(f"wrote {CLI_REFERENCE.relative_to(ROOT)}", file=sys.stderr)
