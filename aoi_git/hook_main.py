"""`python -m aoi_git.hook_main pre-commit|commit-msg FILE`: what aoi's git hooks run.

The same as `aoi hook pre-commit` / `aoi hook commit-msg FILE`, without the command line
(click and every command's imports): these run in each `git commit` of a person. Git runs
a hook at the top of the work tree, so that is the org's root. The rules of the CLI hold:
a problem is one line on stderr and status 1, never a traceback (`AOI_DEBUG=1` shows it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from aoi_git.errors import AoiError, ValidationFailed
from aoi_git.org.commit_hooks import BLOCKED, TRAILERS_SKIPPED, add_trailers, pre_commit_problems

USAGE = "usage: python -m aoi_git.hook_main pre-commit | commit-msg MESSAGE_FILE"


def main(argv: list[str]) -> int:
    if argv == ["pre-commit"]:
        return _pre_commit()
    if len(argv) == 2 and argv[0] == "commit-msg":
        try:
            add_trailers(Path.cwd(), Path(argv[1]))
        except Exception as exc:  # a trailer is a nicety: never block a person's commit
            print(f"{TRAILERS_SKIPPED}: {exc}", file=sys.stderr)
        return 0
    print(USAGE, file=sys.stderr)
    return 1


def _pre_commit() -> int:
    try:
        problems = pre_commit_problems(Path.cwd())
    except ValidationFailed as exc:
        problems = exc.problems
    except AoiError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, not the person's mistake: still one line
        if os.environ.get("AOI_DEBUG"):
            raise
        print(f"Error: internal error: {type(exc).__name__}: {exc} "
              "(AOI_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    if problems:
        for line in [*problems, BLOCKED]:
            print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
