"""Talent markets: where `aoi market` and `aoi hire` find talent packages.

A market is a folder of talent packages, each `<id>/talent.yaml` + `prompt.md` +
`skills/<name>/SKILL.md` (Agent Skills: front matter `name`, `description`). The bundled
market comes first, then the entries of `aoi.yaml` `markets:`, in order:

- a folder: a path relative to the org (or absolute), read as it is on disk;
- a git repository: a URL (`scheme://...`), an scp-like `host:path`, a path ending in
  `.git`, or a local bare repository. It is cloned with `git clone --depth 1` into
  `.aoi/markets/<name>` and refreshed with `git fetch --depth 1` when the copy is older
  than `FETCH_TTL_S` (or when asked to). A failed fetch keeps the cached copy; a market
  that cannot be read is reported in `problems`, never fatal.

A talent id found in several markets resolves to the first market that has it.

Search ranks packages by a BM25F-style score, made to be explained: the query and each
field are tokenised (lowercase words, hyphenated words split, stop words dropped, a few
English suffixes stripped), and every query term found in a field adds

    weight(field) * idf(term) * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len / avg_len))

with field weights role 3 (the role and the id), tags 2.5, skills 2 (skill names and
their SKILL.md descriptions), description 1, and `idf` over all packages searched.
A query naming the talent's role (or id) exactly earns `ROLE_BONUS` on top.
`Match.fields` keeps each field's contribution and the terms that produced it.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aoi_git.domain.ids import is_valid_id
from aoi_git.domain.model import OrgConfig, Talent
from aoi_git.errors import AoiError
from aoi_git.org.validate import schema_problems
from aoi_git.resources import resource_dir
from aoi_git.store import yamlio
from aoi_git.store.git import git

FIELD_WEIGHTS: Mapping[str, float] = {"role": 3.0, "tags": 2.5, "skills": 2.0,
                                      "description": 1.0}
ROLE_BONUS = 3.0
K1 = 1.2
B = 0.75
FETCH_TTL_S = 3600.0
BUNDLED = "bundled"
MARKETS_DIR = Path(".aoi") / "markets"
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}
_STOP_WORDS = (
    "a an and are as at be by can do for from has have i in into is it its me my need needs "
    "of on or our so that the their them this to us use used using we when who will with "
    "you your"
)
_STOP = frozenset(_STOP_WORDS.split())
_SUFFIXES = ("ing", "ers", "er", "ed", "s")


# --------------------------------------------------------------------------- packages

@dataclass(frozen=True)
class Skill:
    name: str
    description: str = ""


@dataclass(frozen=True)
class Package:
    """One talent package in a market."""

    talent: Talent
    path: Path
    market: str
    skills: tuple[Skill, ...] = ()

    @property
    def id(self) -> str:
        return self.talent.id

    def files(self) -> dict[str, bytes]:
        """Every file of the package, by path relative to its folder (hidden ones skipped)."""
        out: dict[str, bytes] = {}
        for p in sorted(self.path.rglob("*")):
            rel = p.relative_to(self.path)
            if p.is_file() and not any(part.startswith(".") for part in rel.parts):
                out[rel.as_posix()] = p.read_bytes()
        return out

    def to_json(self) -> dict[str, Any]:
        t = self.talent
        return {"id": t.id, "role": t.role, "market": self.market, "description": t.description,
                "tags": list(t.tags), "skills": [s.name for s in self.skills],
                "backend": dict(t.backend), "tools": list(t.tools), "path": str(self.path)}


@dataclass(frozen=True)
class Market:
    name: str
    source: str  # as written in aoi.yaml ("bundled" for the bundled one)
    path: Path  # the folder read (a clone's work tree for a git market)
    packages: tuple[Package, ...] = ()


@dataclass
class Catalogue:
    """All markets, in precedence order, and what could not be read."""

    markets: list[Market] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def packages(self) -> list[Package]:
        return [p for m in self.markets for p in m.packages]

    def find(self, talent_id: str) -> Package | None:
        return next((p for p in self.packages if p.id == talent_id), None)

    def closest(self, talent_id: str, extra: Iterable[str] = (), n: int = 3) -> list[str]:
        ids = list(dict.fromkeys([*(p.id for p in self.packages), *extra]))
        near = difflib.get_close_matches(talent_id, ids, n=n, cutoff=0.4)
        for m in search(self.packages, talent_id.replace("-", " "), limit=n):
            if m.package.id not in near and len(near) < n:
                near.append(m.package.id)
        return near


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a Markdown file with an optional `---` YAML header."""
    if not text.startswith("---"):
        return {}, text
    m = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, re.S)
    if m is None:
        return {}, text
    try:
        meta = yamlio.load(m.group(1))
    except yamlio.YamlError:
        return {}, text
    return (meta if isinstance(meta, dict) else {}), text[m.end():]


def load_package(folder: Path, market: str, problems: list[str] | None = None) -> Package | None:
    """The package in `folder`, or None (with a problem noted) if it is not a valid one."""
    problems = problems if problems is not None else []
    meta_path = folder / "talent.yaml"
    try:
        data = meta_path.read_bytes()
        raw = yamlio.load(data)
    except (OSError, yamlio.YamlError) as exc:
        problems.append(f"{meta_path}: {exc}")
        return None
    errs = schema_problems("talent", raw if raw is not None else {}, data, str(meta_path))
    if errs:
        problems += errs
        return None
    try:
        prompt = (folder / "prompt.md").read_text(encoding="utf-8")
    except OSError:
        prompt = ""
    talent = Talent.from_dict(raw, default_id=folder.name, prompt=prompt)
    skills = []
    for name in talent.skills:
        meta: dict[str, Any] = {}
        try:
            meta, _ = split_front_matter((folder / "skills" / name / "SKILL.md").read_text(
                encoding="utf-8"))
        except OSError:
            problems.append(f"{folder}/skills/{name}/SKILL.md: missing")
        skills.append(Skill(name, str(meta.get("description") or "")))
    return Package(talent, folder, market, tuple(skills))


def load_folder(name: str, source: str, folder: Path, problems: list[str]) -> Market:
    packages = []
    if not folder.is_dir():
        problems.append(f"market {source}: {folder} is not a folder")
        return Market(name, source, folder)
    for child in sorted(folder.iterdir()):
        if child.is_dir() and (child / "talent.yaml").is_file():
            pkg = load_package(child, name, problems)
            if pkg is not None:
                packages.append(pkg)
    if (folder / "talent.yaml").is_file():  # a market that is a single package
        pkg = load_package(folder, name, problems)
        if pkg is not None:
            packages.append(pkg)
    return Market(name, source, folder, tuple(packages))


# ----------------------------------------------------------------------------- sources

def is_git_source(spec: str, org_root: Path | None) -> bool:
    if "://" in spec or spec.endswith(".git") or re.match(r"^[\w.-]+@[\w.-]+:", spec):
        return True
    path = _local_path(spec, org_root)
    return path.is_dir() and (path / "HEAD").is_file() and (path / "objects").is_dir()


def _local_path(spec: str, org_root: Path | None) -> Path:
    p = Path(spec).expanduser()
    if not p.is_absolute() and org_root is not None:
        p = org_root / p
    return p.resolve()


def clone_name(spec: str) -> str:
    """`.aoi/markets/<name>`: the repository's base name and a hash of the source."""
    base = re.split(r"[/:]", spec.rstrip("/"))[-1].removesuffix(".git") or "market"
    slug = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-") or "market"
    return f"{slug}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}"


def fetch_git_market(spec: str, org_root: Path, *, refresh: bool = False,
                     fetch: bool = True, now: float | None = None,
                     problems: list[str] | None = None) -> Path:
    """The work tree of the clone of `spec` under `.aoi/markets/`, cloned or refreshed.

    A failed clone raises; a failed refresh keeps the cached copy (noted in `problems`)."""
    dest = org_root / MARKETS_DIR / clone_name(spec)
    url = spec
    if "://" not in spec and not re.match(r"^[\w.-]+@[\w.-]+:", spec):
        local = _local_path(spec, org_root)
        if local.exists():
            url = local.as_uri()  # file:// so that --depth 1 is honoured
    if not (dest / ".git").exists():
        if not fetch:
            raise AoiError(f"market {spec}: not fetched yet (`aoi market list` fetches it)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            git("clone", "--quiet", "--depth", "1", url, str(tmp), cwd=dest.parent, env=_GIT_ENV)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest
    stamp = dest / ".git" / "FETCH_HEAD"
    if not stamp.exists():
        stamp = dest / ".git" / "HEAD"
    age = (now if now is not None else time.time()) - stamp.stat().st_mtime
    if fetch and (refresh or age > FETCH_TTL_S):
        try:
            git("fetch", "--quiet", "--depth", "1", "origin", "HEAD", cwd=dest, env=_GIT_ENV)
            git("reset", "--quiet", "--hard", "FETCH_HEAD", cwd=dest, env=_GIT_ENV)
        except AoiError as exc:
            if problems is not None:
                problems.append(f"market {spec}: could not fetch ({exc}); using the copy "
                                f"fetched {age / 60:.0f} min ago")
    return dest


def load_catalogue(org_root: Path | None, config: OrgConfig | None, *, refresh: bool = False,
                   fetch: bool = True) -> Catalogue:
    """The bundled market, then `config.markets` in order (see the module doc).

    `fetch=False` never touches the network: git markets are read from their clones
    (and skipped, with a problem noted, if they were never cloned)."""
    cat = Catalogue()
    cat.markets.append(load_folder(BUNDLED, BUNDLED, resource_dir("market"), cat.problems))
    for spec in (config.markets if config is not None else ()):
        try:
            if is_git_source(spec, org_root):
                if org_root is None:
                    raise AoiError(f"market {spec}: git markets need an org to clone into")
                path = fetch_git_market(spec, org_root, refresh=refresh, fetch=fetch,
                                        problems=cat.problems)
            else:
                path = _local_path(spec, org_root)
        except AoiError as exc:
            cat.problems.append(str(exc) if str(exc).startswith("market ") else
                                f"market {spec}: {exc}")
            continue
        cat.markets.append(load_folder(spec, spec, path, cat.problems))
    return cat


# ------------------------------------------------------------------------------ search

def stem(word: str) -> str:
    """A crude, consistent stem: `writers`, `writer`, `write` and `writing` all → `writ`."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                break
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) >= 4:
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    return [stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]


def package_fields(pkg: Package) -> dict[str, list[str]]:
    t = pkg.talent
    return {
        "role": list(dict.fromkeys(tokens(t.role) + tokens(t.id))),
        "tags": tokens(" ".join(t.tags)),
        "skills": tokens(" ".join(f"{s.name} {s.description}" for s in pkg.skills)),
        "description": tokens(t.description),
    }


@dataclass(frozen=True)
class FieldScore:
    score: float
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    package: Package
    score: float
    fields: Mapping[str, FieldScore]
    bonus: float = 0.0

    def explain(self) -> str:
        parts = [f"{name} {fs.score:.2f} ({', '.join(fs.terms)})"
                 for name, fs in self.fields.items() if fs.score > 0]
        if self.bonus:
            parts.append(f"role match +{self.bonus:.2f}")
        return "; ".join(parts) or "no term matched"

    def to_json(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.package.id, "role": self.package.talent.role,
                               "market": self.package.market, "score": round(self.score, 4),
                               "description": self.package.talent.description}
        if explain:
            out["explain"] = {
                **{name: {"score": round(fs.score, 4), "weight": FIELD_WEIGHTS[name],
                          "terms": list(fs.terms)} for name, fs in self.fields.items()},
                "role_bonus": self.bonus,
            }
        return out


def search(packages: Sequence[Package], query: str, limit: int | None = None) -> list[Match]:
    """Packages ranked by relevance to `query` (best first; ties by id); zero scores left out."""
    q_terms = list(dict.fromkeys(tokens(query)))
    if not q_terms or not packages:
        return []
    docs = [package_fields(p) for p in packages]
    n = len(docs)
    avg = {f: (sum(len(d[f]) for d in docs) / n) or 1.0 for f in FIELD_WEIGHTS}
    df = {t: sum(1 for d in docs if any(t in d[f] for f in FIELD_WEIGHTS)) for t in q_terms}
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in q_terms}
    q_norm = " ".join(re.findall(r"[a-z0-9]+", query.lower()))
    matches = []
    for pkg, doc in zip(packages, docs, strict=True):
        fields: dict[str, FieldScore] = {}
        for name, weight in FIELD_WEIGHTS.items():
            words = doc[name]
            score, hit = 0.0, []
            for t in q_terms:
                tf = words.count(t)
                if not tf:
                    continue
                norm = tf + K1 * (1 - B + B * len(words) / avg[name])
                score += weight * idf[t] * tf * (K1 + 1) / norm
                hit.append(t)
            fields[name] = FieldScore(score, tuple(hit))
        bonus = ROLE_BONUS if _names_role(q_norm, pkg.talent) else 0.0
        total = sum(fs.score for fs in fields.values()) + bonus
        if total > 0:
            matches.append(Match(pkg, total, fields, bonus))
    matches.sort(key=lambda m: (-m.score, m.package.id))
    return matches[:limit] if limit is not None else matches


def _names_role(q_norm: str, talent: Talent) -> bool:
    padded = f" {q_norm} "
    return any(f" {name} " in padded
               for name in (" ".join(re.findall(r"[a-z0-9]+", talent.role.lower())),
                            talent.id.replace("-", " ")) if name)


# ----------------------------------------------------------------------------- personas

MODEL_ALIASES = frozenset({"sonnet", "opus", "haiku"})


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    raise AoiError(f"expected a list or a comma-separated string, got {value!r}")


def slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")[:64]


def persona_package(text: str, *, source: str, talent_id: str | None = None) -> \
        tuple[str, dict[str, bytes]]:
    """A persona (Markdown with front matter `name`, `description`, optional `tools`,
    `tags`, `model`, `role`; the body = instructions) as talent package files.

    Returns (talent id, {path relative to the package folder: bytes}): `talent.yaml` and
    `prompt.md` (the body); no skills (the instructions are the role prompt)."""
    meta, body = split_front_matter(text)
    if not meta:
        raise AoiError(f"{source}: no YAML front matter: a persona starts with `---`, "
                       "`name:` and `description:` lines, then `---` and its instructions")
    name = str(meta.get("name") or "").strip()
    description = " ".join(str(meta.get("description") or "").split())
    if not name:
        raise AoiError(f"{source}: the front matter has no `name:`")
    if not description:
        raise AoiError(f"{source}: the front matter has no `description:`")
    tid = talent_id or slug(name)
    if not is_valid_id(tid):
        raise AoiError(f"{tid!r} is not a valid talent id (2-64 lowercase letters, digits and "
                       "'-'): choose one with --id")
    role = slug(str(meta.get("role") or "")) or tid
    backend: dict[str, Any] = {"kind": "claude"}
    model = str(meta.get("model") or "").strip()
    if model and model != "inherit":
        backend["model"] = model
    tools = list(dict.fromkeys(_list(meta.get("tools"))))
    tags = list(dict.fromkeys(slug(t) for t in _list(meta.get("tags")) if slug(t)))
    talent: dict[str, Any] = {"id": tid, "role": role, "description": description}
    if tags:
        talent["tags"] = tags
    talent["backend"] = backend
    if tools:
        talent["tools"] = tools
    talent["skills"] = []
    header = ("# yaml-language-server: $schema=../../schemas/talent.schema.json\n"
              f"# Imported from the persona {Path(source).name} by `aoi market import`.\n")
    prompt = body.strip() or description
    return tid, {"talent.yaml": header.encode() + yamlio.dump(talent),
                 "prompt.md": (prompt + "\n").encode("utf-8")}
