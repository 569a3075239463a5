"""The package's layers, read from its source with `ast` (nothing of it is imported).

- `domain/` imports nothing of the package but `domain/` and `aoi_git.errors`;
- `runtime/scheduler.py` imports only `domain/` (and `aoi_git.errors`);
- only `store/` imports pygit2, and no module but `store/git.py` starts a process whose
  argv[0] is "git";
- no private name (`_x`) is imported from, or read off, another module;
- the modules import each other without a cycle.

Each test fails with one `path:line: what` line per violation.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aoi_git"
REPO = PACKAGE.parent


SUBPROCESS_STARTERS = frozenset({"run", "Popen", "call", "check_call", "check_output"})
# underscore names that are public API of the standard library
STDLIB_UNDERSCORE = frozenset({"_exit", "_replace", "_asdict", "_fields", "_make", "_getframe"})


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Module:
    name: str  # aoi_git.store.git
    path: str  # aoi_git/store/git.py, relative to the repository
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.endswith("__init__.py")


def modules() -> list[Module]:
    found = []
    for file in sorted(PACKAGE.rglob("*.py")):
        rel = file.relative_to(REPO)
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append(Module(".".join(parts), str(rel), ast.parse(file.read_text(), str(rel))))
    return found


MODULES = modules()
NAMES = {m.name for m in MODULES}


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # the module imported (a name of the package, or an outside one)
    names: tuple[tuple[str, str], ...]  # (imported name, bound as) for `from` imports


def imports(mod: Module) -> Iterator[Import]:
    """Every import in the module, also inside functions; `from pkg import mod` targets
    the submodule when `pkg.mod` is a module of the package."""
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = mod.name if mod.is_package else mod.name.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    package = package.rsplit(".", 1)[0]
                base = f"{package}.{base}" if base else package
            plain = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in NAMES:
                    yield Import(node.lineno, sub, ())
                else:
                    plain.append((alias.name, alias.asname or alias.name))
            if plain:
                yield Import(node.lineno, base, tuple(plain))


def in_package(target: str) -> bool:
    return target == "aoi_git" or target.startswith("aoi_git.")


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def report(violations: list[Violation]) -> str:
    return "\n" + "\n".join(map(str, violations))


def only_imports(prefix: str, allowed_targets: tuple[str, ...]) -> list[Violation]:
    found = []
    for mod in MODULES:
        if not (mod.name == prefix or mod.name.startswith(prefix + ".")):
            continue
        for imp in imports(mod):
            if in_package(imp.target) and not any(
                imp.target == a or imp.target.startswith(a + ".") for a in allowed_targets
            ):
                found.append(Violation(mod.path, imp.line, f"imports {imp.target}"))
    return found


def test_domain_imports_only_domain_and_errors() -> None:
    found = only_imports("aoi_git.domain", ("aoi_git.domain", "aoi_git.errors"))
    assert not found, report(found)


def test_scheduler_imports_only_domain() -> None:
    found = only_imports("aoi_git.runtime.scheduler", ("aoi_git.domain", "aoi_git.errors"))
    assert not found, report(found)


def git_argv_lists(tree: ast.AST) -> set[str]:
    """Names assigned a list or tuple literal whose first item is "git"."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and starts_with_git(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def starts_with_git(node: ast.expr) -> bool:
    return (isinstance(node, ast.List | ast.Tuple) and bool(node.elts)
            and isinstance(node.elts[0], ast.Constant) and node.elts[0].value == "git")


def subprocess_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names bound to the subprocess module, functions imported from it)."""
    modules_, functions = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules_ |= {a.asname or a.name for a in node.names if a.name == "subprocess"}
        elif isinstance(node, ast.ImportFrom) and node.module == "subprocess":
            functions |= {a.asname or a.name for a in node.names
                          if a.name in SUBPROCESS_STARTERS}
    return modules_, functions


def git_processes(mod: Module) -> Iterator[Violation]:
    sub_modules, sub_functions = subprocess_names(mod.tree)
    argv_names = git_argv_lists(mod.tree)
    for node in ast.walk(mod.tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        fn = node.func
        starts = (isinstance(fn, ast.Attribute) and fn.attr in SUBPROCESS_STARTERS
                  and isinstance(fn.value, ast.Name) and fn.value.id in sub_modules) or (
                  isinstance(fn, ast.Name) and fn.id in sub_functions)
        argv = node.args[0]
        if starts and (starts_with_git(argv)
                       or isinstance(argv, ast.Name) and argv.id in argv_names):
            yield Violation(mod.path, node.lineno,
                            "runs git outside store/git.py (use store.git.git/git_stream)")


def only_store_uses_pygit2_and_only_git_py_runs_git() -> list[Violation]:
    found: list[Violation] = []
    for mod in MODULES:
        if not mod.name.startswith("aoi_git.store."):
            for imp in imports(mod):
                if imp.target == "pygit2" or imp.target.startswith("pygit2."):
                    found.append(Violation(mod.path, imp.line, "imports pygit2 outside store/"))
        if mod.name != "aoi_git.store.git":
            found += git_processes(mod)
    return found


def test_only_store_uses_pygit2_and_only_git_py_runs_git() -> None:
    found = only_store_uses_pygit2_and_only_git_py_runs_git()
    assert not found, report(found)


def own_names(tree: ast.AST) -> set[str]:
    """Every name the module defines itself: functions, classes, assignments, attributes
    assigned on `self`/`cls`, class fields and parameters."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)  # dataclasses.replace(x, _y=...), field(...) of its own
    return names


def private_uses(mod: Module) -> Iterator[Violation]:
    module_aliases: set[str] = set()
    for imp in imports(mod):
        for name, _bound in imp.names:
            if in_package(imp.target) and is_private(name):
                yield Violation(mod.path, imp.line, f"imports private {imp.target}.{name}")
        if in_package(imp.target) and not imp.names and imp.target in NAMES:
            module_aliases.add(imp.target.rsplit(".", 1)[-1])
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            module_aliases |= {a.asname for a in node.names if a.asname}
    mine = own_names(mod.tree)
    for node in ast.walk(mod.tree):
        if not (isinstance(node, ast.Attribute) and is_private(node.attr)):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in module_aliases:
            yield Violation(mod.path, node.lineno, f"reads private {owner.id}.{node.attr}")
        elif node.attr not in mine and node.attr not in STDLIB_UNDERSCORE:
            text = ast.unparse(owner)
            if text not in ("self", "cls"):
                yield Violation(mod.path, node.lineno,
                                f"reads private {text}.{node.attr} of another module")


def test_no_private_names_across_modules() -> None:
    found = [v for mod in MODULES for v in private_uses(mod)]
    assert not found, report(found)


def import_cycles() -> list[Violation]:
    edges: dict[str, dict[str, int]] = {m.name: {} for m in MODULES}
    paths = {m.name: m.path for m in MODULES}
    for mod in MODULES:
        for imp in imports(mod):
            if imp.target in NAMES and imp.target != mod.name:
                edges[mod.name].setdefault(imp.target, imp.line)
    cycles: list[Violation] = []
    seen: set[frozenset[str]] = set()
    for start in edges:
        # the shortest way back to `start`, breadth first
        back: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in back:
            nxt = []
            for node in frontier:
                for dep in edges[node]:
                    if dep not in back:
                        back[dep] = node
                        nxt.append(dep)
            frontier = nxt
        if start not in back:
            continue
        ring = [start]
        while (prev := back[ring[-1]]) != start:
            ring.append(prev)
        ring.reverse()  # start -> ... -> start
        if frozenset(ring) in seen:
            continue
        seen.add(frozenset(ring))
        hops = [start, *ring]
        text = " -> ".join(
            f"{a} ({paths[a]}:{edges[a][b]})" for a, b in zip(hops, hops[1:], strict=False)
        ) + f" -> {start}"
        cycles.append(Violation(paths[start], edges[start][hops[1]], f"import cycle: {text}"))
    return cycles


def test_no_import_cycle() -> None:
    cycles = import_cycles()
    assert not cycles, report(cycles)

