"""The `aoi` executable. `aoi --version` is answered before the command line is built:
it needs none of click's or aoi's modules, which cost ~50 ms to import, and a version
check is what scripts and package managers run most. Everything else is `aoi_git.cli`."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from aoi_git import __version__

        sys.stdout.write(f"aoi, version {__version__}\n")
        return
    from aoi_git.cli import main as cli_main

    cli_main()
