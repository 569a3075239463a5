"""Rules the suite keeps about itself and the CLI: bounded property tests, documented commands.

ruff and mypy run in `.ci/run`, as steps of their own."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _settings_keywords(node: ast.expr, named: dict[str, set[str]]) -> set[str] | None:
    """The keywords of a `settings(...)` decorator (or of the module-level settings object
    it names); None if `node` is no settings."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "settings":
        return {k.arg for k in node.keywords if k.arg}
    if isinstance(node, ast.Name):
        return named.get(node.id)
    return None


def test_every_property_test_bounds_its_examples() -> None:
    """Each `@given` test says how many examples it runs and its deadline, next to it (the
    timeout that ends a runaway test is pytest-timeout's, see pyproject.toml)."""
    unbounded = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text())
        named = {t.id: kws for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)
                 if (kws := _settings_keywords(node.value, {})) is not None}
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            decorators = fn.decorator_list
            if not any(isinstance(d, ast.Call) and getattr(d.func, "id", None) == "given"
                       for d in decorators):
                continue
            keywords: set[str] = set()
            for d in decorators:
                keywords |= _settings_keywords(d, named) or set()
            if not {"max_examples", "deadline"} <= keywords:
                unbounded.append(f"{path.name}::{fn.name}")
    assert not unbounded, f"@given without @settings(max_examples=..., deadline=...): {unbounded}"


def test_test_modules_import_shared_code_from_kit_not_conftest() -> None:
    """conftest.py holds fixtures; what modules import lives in kit.py (or orgkit.py)."""
    importing = [p.name for p in sorted((ROOT / "tests").glob("*.py"))
                 if any(isinstance(node, ast.ImportFrom) and node.module == "conftest"
                        for node in ast.walk(ast.parse(p.read_text())))]
    assert not importing, f"`from conftest import` in {importing}: import from kit instead"


def test_every_command_is_documented() -> None:
    """Every command has help with an example and appears in the README."""
    import click

    from aoi_git.cli import main

    readme = (ROOT / "README.md").read_text()

    def walk(cmd: click.Command, path: list[str]) -> None:
        if getattr(cmd, "hidden", False):
            return
        name = " ".join(path)
        assert "Example" in (cmd.help or ""), f"`aoi {name}` help has no example"
        if path:
            assert f"aoi {path[0]}" in readme, f"`aoi {path[0]}` is not in the README"
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for sub_name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, sub_name)
                assert sub is not None, f"`aoi {name} {sub_name}` does not load"
                walk(sub, [*path, sub_name])

    walk(main, [])
