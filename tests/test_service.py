"""aoi as a service: the daemon's log on stderr (one line per event, for journald) and in a
rotated file, SIGHUP as a reload, and the systemd units in examples/ naming real options."""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kit import AOI_BIN
from orgkit import TmpOrg

from aoi_git.runtime.daemon_log import DaemonLog

REPO = Path(__file__).resolve().parent.parent
UNITS = REPO / "examples" / "systemd"


def _wait_for(path: Path, text: str, timeout: float = 30.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in (body := path.read_text()):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_daemon_logs_one_line_per_event_on_stderr_when_not_a_terminal(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    (org.root / "agents" / "ok.py").write_text("print('ok')\n")
    profile = {"id": "eng-1", "name": "Eng", "role": "engineer", "reports_to": "ceo",
               "status": "active",
               "backend": {"kind": "script",
                           "command": [sys.executable, str(org.root / "agents" / "ok.py")]}}
    (org.root / "employees" / "eng-1").mkdir()
    (org.root / "employees" / "eng-1" / "profile.yaml").write_text(yaml.safe_dump(profile))
    org.commit()
    org.new("t1", "Say ok", assignee="eng-1")
    # (stderr is a pipe here, as under systemd; no -v)
    out = org.aoi("daemon", "--until-idle", timeout=90)
    assert out.returncode == 0, out.stderr
    err = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert any("daemon started on" in ln for ln in err), out.stderr
    assert any(ln.endswith("daemon stopped") for ln in err), out.stderr
    assert any("t1: started eng-1" in ln for ln in err), out.stderr
    body = org.daemon_log()
    # every stderr line is an event the file has too, stamped the same way
    for ln in err:
        stamp, _, msg = ln.partition(" ")
        assert stamp[:4].isdigit() and "T" in stamp, ln
        assert msg.removesuffix(" (more in .aoi/daemon.log)") in body, ln


def test_journald_lines_carry_no_stamp_and_a_traceback_stays_in_the_file(
        tmp_path: Path) -> None:
    path = tmp_path / "daemon.log"
    echoed = tmp_path / "stderr.txt"
    os.environ["JOURNAL_STREAM"] = "8:1234"  # (isolated_env restores the environment)
    try:
        with open(echoed, "w") as fh:
            log = DaemonLog(path, lambda: 0.0, fh)
            log("t-1: started eng-1")
            log("an action failed: ValueError: x\nTraceback (most recent call last):\n  ...")
    finally:
        del os.environ["JOURNAL_STREAM"]
    assert echoed.read_text().splitlines() == [
        "t-1: started eng-1",
        "an action failed: ValueError: x (more in .aoi/daemon.log)"]
    assert "Traceback (most recent call last):" in path.read_text()


def test_the_file_log_is_rotated_by_size_and_keeps_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "daemon.log"
    log = DaemonLog(path, lambda: 0.0, None, max_bytes=1000, backups=3)
    for n in range(200):
        log(f"event {n:04d} " + "x" * 30)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["daemon.log", "daemon.log.1", "daemon.log.2", "daemon.log.3"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 1000
    assert path.read_text().splitlines()[-1].endswith("event 0199 " + "x" * 30)
    # the files together hold the newest events, in order, with no gap
    kept = [int(ln.split()[2]) for name in ("daemon.log.3", "daemon.log.2", "daemon.log.1",
                                             "daemon.log")
            for ln in (tmp_path / name).read_text().splitlines()]
    assert kept == list(range(kept[0], 200))


@pytest.mark.timeout(90)
def test_sighup_reloads_and_sigterm_stops_warm(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    org.commit()
    log = org.root / ".aoi" / "daemon.log"
    proc = subprocess.Popen([str(AOI_BIN), "-C", str(org.root), "daemon"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(log, "daemon started on")
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, "reloaded: aoi.yaml and the org read again")
        assert proc.poll() is None  # a reload is not a stop
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "reloaded" in err and "daemon stopped" in err


def _unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(UNITS / name)
    return cp


@pytest.mark.parametrize("name", ["aoi-daemon.service", "aoi-board.service"])
def test_systemd_units_run_real_commands(name: str) -> None:
    unit = _unit(name)
    service = unit["Service"]
    assert service["Restart"] in {"on-failure", "always"}
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "aoi"
    sub = [a for a in argv[1:] if not a.startswith("-") and "/" not in a and "%" not in a]
    cmd = sub[0]
    helptext = subprocess.run([str(AOI_BIN), cmd, "--help"], capture_output=True, text=True,
                              check=False)
    assert helptext.returncode == 0, helptext.stderr
    for opt in (a.split("=")[0] for a in argv[1:] if a.startswith("--")):
        if argv.index(next(a for a in argv if a.startswith(opt))) < argv.index(cmd):
            continue  # a global option (-C DIR)
        assert opt in helptext.stdout, f"{name}: {opt} is not an option of aoi {cmd}"
    if cmd == "daemon":
        # the warm stop is SIGTERM, waited for longer than the daemon's grace period
        assert service.get("KillSignal", "SIGTERM") == "SIGTERM"
        assert "TimeoutStopSec" in service
        assert "ExecReload" in service and "HUP" in service["ExecReload"]
