"""`aoi completion SHELL` prints a script that completes aoi's commands in a real shell."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

AOI = [sys.executable, "-m", "aoi_git"]


def test_bash_completes_a_subcommand(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    script = subprocess.run([*AOI, "completion", "bash"], capture_output=True, text=True,
                            check=True).stdout
    # bash passes the command name as $1 and the script runs it: an `aoi` on PATH that runs
    # this interpreter's aoi
    shim = tmp_path / "aoi"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m aoi_git \"$@\"\n")
    shim.chmod(0o755)
    (tmp_path / "completion.bash").write_text(script)
    probe = ("source completion.bash; COMP_WORDS=(aoi ta); COMP_CWORD=1; "
             "_aoi_completion aoi; printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run([bash, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, check=True).stdout
    assert out.split() == ["task"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_their_script(shell: str) -> None:
    out = subprocess.run([*AOI, "completion", shell], capture_output=True, text=True,
                         check=True).stdout
    assert f"_AOI_COMPLETE={shell}_complete" in out


def test_an_unknown_shell_is_one_line_and_status_1() -> None:
    proc = subprocess.run([*AOI, "completion", "tcsh"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "tcsh" in proc.stderr
