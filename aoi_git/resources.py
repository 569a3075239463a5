"""Locate data shipped with the package: schemas, org template, examples, hooks, market."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """A top-level data folder, from an installed wheel (`_data/`) or a source checkout."""
    for candidate in (_HERE / "_data" / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"aoi data folder {name!r} is missing from the installation")
