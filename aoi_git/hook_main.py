"""`python -m aoi_git.hook_main pre-commit|commit-msg FILE|pre-receive`: what aoi's git
hooks run.

The same as `aoi hook pre-commit` / `aoi hook commit-msg FILE` / `aoi hook pre-receive`,
without the command line (click and every command's imports): the first two run in each
`git commit` of a person, the last in each push a server takes (every host's claims).
Git runs a commit's hook at the top of the work tree, so that is the org's root, and a
server's in its git folder. The rules of the CLI hold: a problem is one line on stderr
and status 1, never a traceback (`AOI_DEBUG=1` shows it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from aoi_git.errors import AoiError, ValidationFailed

USAGE = ("usage: python -m aoi_git.hook_main pre-commit | commit-msg MESSAGE_FILE "
         "| pre-receive")


def main(argv: list[str]) -> int:
    if argv == ["pre-commit"]:
        return _pre_commit()
    if argv == ["pre-receive"]:
        return _pre_receive()
    if len(argv) == 2 and argv[0] == "commit-msg":
        from aoi_git.org.commit_hooks import TRAILERS_SKIPPED, add_trailers

        try:
            add_trailers(Path.cwd(), Path(argv[1]))
        except Exception as exc:  # a trailer is a nicety: never block a person's commit
            print(f"{TRAILERS_SKIPPED}: {exc}", file=sys.stderr)
        return 0
    print(USAGE, file=sys.stderr)
    return 1


def _pre_commit() -> int:
    from aoi_git.org.commit_hooks import BLOCKED, pre_commit_problems

    return _report(lambda: pre_commit_problems(Path.cwd()), BLOCKED)


def _pre_receive() -> int:
    from aoi_git.org.push_check import REFUSED, check_push

    # git runs it in the repository's git folder, and says so in GIT_DIR
    git_dir = Path(os.environ.get("GIT_DIR") or ".").resolve()
    return _report(lambda: check_push(git_dir, sys.stdin.read().splitlines()), REFUSED)


def _report(check: Callable[[], list[str]], last: str) -> int:
    """Run `check`; its problems (then `last`), or an error, one a line on stderr and
    status 1."""
    try:
        problems = check()
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
        for line in [*problems, last]:
            print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
