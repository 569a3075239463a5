"""`aoi board` in a real headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium) against a real `aoi board` process on a real org, with a real daemon.

Screenshots go to test-artifacts/board/ at the top of the repository."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit import AOI_BIN, PERSON_ACTOR, PERSON_EMAIL, PERSON_NAME, git, wait_for
from orgkit import TmpOrg

from aoi_git.domain.ids import shard_path
from aoi_git.domain.model import Task
from aoi_git.store.txn import dump_task

pytestmark = pytest.mark.timeout(180)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "board"

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):  # .ci/run installs them
    pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

AGENT = '''\
import json, os, pathlib, time
shared = pathlib.Path({shared!r})
if "[wait]" in json.loads(pathlib.Path(os.environ["AOI_TASK_FILE"]).read_text())["title"]:
    while not (shared / "go").exists():
        time.sleep(0.05)
pathlib.Path("NOTES.md").write_text("notes of " + os.environ["AOI_TASK_ID"] + "\\n")
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text(
    json.dumps({{"outcome": "completed", "summary": "wrote NOTES.md",
                "usage": {{"input_tokens": 10, "output_tokens": 5, "usd": 0.125}}}}))
'''


class BoardOrg(TmpOrg):
    """An org whose person is the CEO, with one script engineer `eng-1`."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.edit_config(lambda d: d.update(
            humans={"ceo": {"name": PERSON_NAME, "email": PERSON_EMAIL}}))
        agent = self.root / "agents" / "eng.py"
        agent.write_text(AGENT.format(shared=str(self.shared)))
        profile = {"id": "eng-1", "name": "Eng One", "role": "engineer", "reports_to": "ceo",
                   "status": "active",
                   "backend": {"kind": "script", "command": [sys.executable, str(agent)]},
                   "capacity": {"concurrency": 1, "timeout_s": 60}}
        (self.root / "employees" / "eng-1").mkdir()
        (self.root / "employees" / "eng-1" / "profile.yaml").write_text(
            yaml.safe_dump(profile, sort_keys=False))
        self.commit()


@contextlib.contextmanager
def board(root: Path, *args: str) -> Iterator[str]:
    """`aoi board --port 0` as a process; yields the address it printed (its output is
    printed afterwards, shown when the test fails)."""
    log = root.parent / f"board-{time.monotonic_ns()}.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(AOI_BIN), "-C", str(root), "board", "--port", "0", *args],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        match = wait_for(lambda: re.search(r"(http://\S+)", log.read_text())
                         or proc.poll() is not None, timeout=30.0, what="the board's address")
        assert isinstance(match, re.Match), log.read_text()
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        print(log.read_text())


@contextlib.contextmanager
def daemon(root: Path) -> Iterator[subprocess.Popen[bytes]]:
    out = open(root.parent / "daemon.out", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(AOI_BIN), "-C", str(root), "daemon"], stdout=out,
                            stderr=subprocess.STDOUT)
    out.close()
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--no-proxy-server", "--window-size=1500,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def card_in(driver: WebDriver, status: str, tid: str) -> bool:
    return bool(driver.find_elements(
        By.CSS_SELECTOR, f'section[data-status="{status}"] li[data-task="{tid}"]'))


def until(driver: WebDriver, cond: Callable[[WebDriver], Any], what: str,
          timeout: float = 30) -> Any:
    """`cond` once it holds; the live feed may swap the page's elements meanwhile."""
    wait = WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException))
    try:
        return wait.until(cond)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}; the page says:\n"
                             f"{driver.find_element(By.TAG_NAME, 'body').text}") from None


# ------------------------------------------------------------------------------ tests

def test_the_board_shows_the_org_and_a_daemon_transition_live(tmp_path: Path,
                                                             browser: WebDriver) -> None:
    org = BoardOrg(tmp_path)
    tid = org.new("t-live", "Write the notes [wait]", reviewer="ceo")
    org.new("t-other", "Plan the launch", assignee="coo", labels=["launch"])
    with board(org.root) as url:
        browser.get(url)
        assert card_in(browser, "pending", tid) and card_in(browser, "pending", "t-other")
        assert "Write the notes" in browser.find_element(By.ID, "main").text
        # filters: by employee, by label
        browser.get(url + "?employee=coo")
        assert card_in(browser, "pending", "t-other") and not card_in(browser, "pending", tid)
        browser.get(url + "?label=launch")
        assert card_in(browser, "pending", "t-other") and not card_in(browser, "pending", tid)
        browser.get(url + "people")
        people = browser.find_element(By.ID, "main").text
        assert "eng-1" in people and "Eng One" in people and "ceo" in people
        assert browser.find_elements(By.CSS_SELECTOR, 'svg.orgchart g[data-employee="eng-1"]')

        browser.get(url)
        browser.execute_script("window.boardNotReloaded = true")
        until(browser, lambda d: "on" in d.find_element(By.ID, "live").get_attribute("class"),
              "the live feed to connect")
        with daemon(org.root):
            until(browser, lambda d: card_in(d, "processing", tid), "t-live to show processing")
            assert browser.execute_script("return window.boardNotReloaded") is True
            shot(browser, "work-processing")
            browser.get(url + "people")  # its agent waits for shared/go: eng-1 is running
            row = browser.find_element(By.CSS_SELECTOR, 'tr[data-employee="eng-1"]')
            assert row.find_element(By.CSS_SELECTOR, ".state").text == "running"
            assert tid in row.text
            shot(browser, "people-running")
            browser.get(url)
            browser.execute_script("window.boardNotReloaded = true")
            until(browser, lambda d: "on" in d.find_element(By.ID, "live").get_attribute(
                "class"), "the live feed to connect again")
            (org.shared / "go").write_text("")
            until(browser, lambda d: card_in(d, "completed", tid), "t-live to show completed")
            assert browser.execute_script("return window.boardNotReloaded") is True
            feed = browser.find_element(By.ID, "feed").text
            assert "processing->completed" in feed and tid in feed
            shot(browser, "work-completed")

        browser.get(url + "people")  # eng-1's work waits for the ceo's review
        assert browser.find_elements(By.CSS_SELECTOR, "svg.orgchart path.handoff.review")
        assert "eng-1 → ceo review" in browser.find_element(By.CSS_SELECTOR, ".handoffs").text
        browser.get(url + "inbox")
        ask = browser.find_element(By.CSS_SELECTOR, f'li.ask[data-task="{tid}"]')
        assert "review" in ask.text and "wrote NOTES.md" in ask.text
        assert "+notes of t-live" in ask.find_element(By.CSS_SELECTOR, "pre.diff").text
        shot(browser, "inbox")
        browser.get(url + f"task/{tid}")
        page = browser.find_element(By.ID, "main").text
        assert "Audit trail" in page and "pending->processing" in page
        assert "NOTES.md" in browser.find_element(By.CSS_SELECTOR, "pre.diff").text
        shot(browser, "task")
        browser.get(url + f"project/{tid}")
        assert browser.find_elements(By.CSS_SELECTOR, "svg.graph")
        browser.get(url + "cost")  # eng-1's run cost $0.125, today, in project t-live
        assert browser.find_element(By.ID, "cost-today").text == "$0.1250"
        rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, ".hbar")]
        assert any(r.startswith("t-live") and "$0.1250" in r for r in rows), rows
        assert any(r.startswith("eng-1") and "$0.1250" in r for r in rows), rows
        assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
        shot(browser, "cost")


def last_commit(root: Path) -> dict[str, str]:
    """HEAD's tree, author, committer and message (no times, so no parent either: those
    differ between twins)."""
    raw = git(root, "cat-file", "commit", "HEAD")
    head, _, message = raw.partition("\n\n")
    fields = dict(line.split(" ", 1) for line in head.splitlines())
    return {"tree": fields["tree"], "author": fields["author"].rsplit(" ", 2)[0],
            "committer": fields["committer"].rsplit(" ", 2)[0], "message": message}


def test_deciding_on_the_board_makes_the_same_commit_as_the_cli(tmp_path: Path,
                                                               browser: WebDriver) -> None:
    org = BoardOrg(tmp_path / "a")
    tid = org.new("t-rev", "Write the notes", reviewer="ceo")
    qid = org.new("t-ask", "Which database?", kind="human", assignee="ceo",
                  question="Which database should we use?")
    org.run()
    assert org.task(tid).status.value == "completed"
    twin = tmp_path / "twin"
    git(tmp_path, "clone", "-q", str(org.root), str(twin))
    with board(org.root) as url:
        browser.get(url + f"task/{tid}")
        browser.find_element(By.CSS_SELECTOR, "form.review button.accept").click()
        until(browser, lambda d: "accepted" in d.find_element(
            By.CSS_SELECTOR, "h1 .status").text, "the accepted task page")
        shot(browser, "accepted")
        on_board = last_commit(org.root)
        cli = subprocess.run([str(AOI_BIN), "-C", str(twin), "review", tid, "--accept"],
                             capture_output=True, text=True, check=False)
        assert cli.returncode == 0, cli.stderr
        assert on_board == last_commit(twin)
        assert f"Aoi-Actor: {PERSON_ACTOR}" in on_board["message"]
        assert "completed->accepted" in on_board["message"]

        browser.get(url + "inbox")
        ask = browser.find_element(By.CSS_SELECTOR, f'li.ask[data-task="{qid}"]')
        ask.find_element(By.CSS_SELECTOR, "textarea").send_keys("PostgreSQL 16")
        ask.find_element(By.CSS_SELECTOR, "button").click()
        until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR,
                                                     f'li.ask[data-task="{qid}"]'),
              "the answered question to leave the inbox")
        on_board = last_commit(org.root)
        cli = subprocess.run([str(AOI_BIN), "-C", str(twin), "answer", qid, "PostgreSQL 16"],
                             capture_output=True, text=True, check=False)
        assert cli.returncode == 0, cli.stderr
        assert on_board == last_commit(twin)
        assert "pending->finished" in on_board["message"]


def test_a_rejection_without_feedback_is_refused_in_one_line(tmp_path: Path,
                                                             browser: WebDriver) -> None:
    org = BoardOrg(tmp_path)
    tid = org.new("t-rev", "Write the notes", reviewer="ceo")
    org.run()
    head = git(org.root, "rev-parse", "HEAD")
    with board(org.root) as url:
        browser.get(url + f"task/{tid}")
        browser.find_element(By.CSS_SELECTOR, "form.review button.reject").click()
        error = until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".error"),
                      "the refusal")[0].text
        assert "a rejection needs feedback" in error
        assert git(org.root, "rev-parse", "HEAD") == head  # nothing committed


def test_a_board_off_loopback_needs_its_token(tmp_path: Path, browser: WebDriver) -> None:
    org = TmpOrg(tmp_path)
    refused = subprocess.run([str(AOI_BIN), "-C", str(org.root), "board", "--host", "0.0.0.0"],
                             capture_output=True, text=True, check=False, timeout=60)
    assert refused.returncode == 1 and "--token" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    with board(org.root, "--host", "0.0.0.0", "--token", "s3cret-token") as url:
        port = url.split(":")[2].split("/")[0]
        bare = f"http://127.0.0.1:{port}/"
        browser.get(bare)
        assert "needs its token" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(bare + "?token=s3cret-token")
        assert browser.find_elements(By.CSS_SELECTOR, "section.column")
        browser.get(bare + "people")  # the cookie carries it from here on
        assert "People and agents" in browser.find_element(By.ID, "main").text
        browser.get(bare + "static/..%2f..%2fpyproject.toml")
        assert "[project]" not in browser.page_source


# ------------------------------------------------------------------ over plain HTTP

def get(url: str, **headers: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_column_shows_its_first_rows_and_pages_through_the_rest(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    for i in range(60):
        task = Task(id=f"t-many{i:03d}", title=f"Task {i}", assignee="coo", reviewer="none",
                    created=f"2025-01-01T00:00:{i:02d}Z")
        path = org.root / shard_path(task.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(dump_task(task))
    org.commit("sixty tasks")
    with board(org.root) as url:
        status, page = get(url)
        assert status == 200
        assert '<section class="column" data-status="pending"><h2>pending ' \
               '<span class="count">60</span>' in page
        assert page.count('data-task="t-many') == 25  # the first rows, oldest first
        assert 'data-task="t-many000"' in page and 'data-task="t-many025"' not in page
        assert "35 more…" in page
        _, rest = get(url + "?offset=50")
        assert rest.count('data-task="t-many') == 10 and 'data-task="t-many059"' in rest
        _, part = get(url, **{"X-Board-Part": "main"})  # what the live script swaps in
        assert part.startswith("<h1>Work") and "<header>" not in part


def test_requests_from_elsewhere_are_refused(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    org.new("t-rev", "Write the notes")
    head = git(org.root, "rev-parse", "HEAD")
    with board(org.root) as url:
        port = url.split(":")[2].split("/")[0]
        status, text = get(url, Host=f"evil.example:{port}")  # a rebound DNS name
        assert status == 421 and "own address" in text
        form = urllib.parse.urlencode({"decision": "accept"}).encode()
        for path, code in (("task/t-rev/review", 403), ("task/t-rev/delete", 404)):
            req = urllib.request.Request(url + path, data=form, method="POST")
            try:
                urllib.request.urlopen(req, timeout=30)
                raise AssertionError(f"{path} was accepted")
            except urllib.error.HTTPError as exc:
                assert exc.code == code
        assert get(url + "task/t-nope")[0] == 404
    assert git(org.root, "rev-parse", "HEAD") == head
