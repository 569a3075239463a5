"""Benchmark of `aoi board`: time to first paint at 1k and 100k tasks, beside baselines.

    python benchmarks/bench_board.py [--sizes 1000,100000] [--dir /tmp] [--keep]

For each size it builds an org (``_orgs.build_org``: projects of 50 tasks, not timed) and
then measures, in the same run:

- ``aoi status`` as the console script (warm: its second run), the text view's baseline;
- the board's start: from launching ``aoi board`` to the address printed (it has loaded
  and aggregated the org by then);
- a static file fetched over HTTP (the server's floor) and the work page fetched over HTTP
  (rendering on the server: counts and each column's first rows, never every task);
- first paint in headless Chromium (``first-contentful-paint`` of the work page, from the
  navigation's start), the first load after the start and the median of 5; the people
  and projects pages the same way;
- live: from the branch moving (a person's new task, committed by this process) to the
  open page having swapped in the new state (the page's ``board:updated`` event).

Target: first paint <= 1 s at 100k tasks.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _orgs import bench_parser, build_org  # noqa: E402

from aoi_git.domain.model import Actor, ActorKind  # noqa: E402
from aoi_git.org.organisation import load_org  # noqa: E402
from aoi_git.org.task_ops import new_task  # noqa: E402
from aoi_git.store.org_store import Store  # noqa: E402
from aoi_git.store.txn import commit  # noqa: E402

AOI = Path(sys.executable).parent / "aoi"
PERSON = Actor(ActorKind.HUMAN, "bench")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PAINT = ("return (performance.getEntriesByName('first-contentful-paint')[0] || {})"
         ".startTime || null")


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def fetch(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        size = len(r.read())
    return time.perf_counter() - start, size


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-proxy-server", "--window-size=1500,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def paint(driver: webdriver.Chrome, url: str) -> float:
    driver.get(url)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        value = driver.execute_script(PAINT)
        if value:
            return float(value) / 1000
        time.sleep(0.01)
    raise RuntimeError(f"no first paint of {url}")


def run_size(root: Path, n: int, driver: webdriver.Chrome) -> None:
    build_org(root, n, project_size=50)
    subprocess.run(["git", "-C", str(root), "config", "user.name", "bench"], check=True)
    timed([str(AOI), "-C", str(root), "status"])  # builds the task cache, as any first run
    status_s = timed([str(AOI), "-C", str(root), "status"])
    log = root.parent / f"board-{n}.out"
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(AOI), "-C", str(root), "board", "--port", "0"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        url = ""
        while not url:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            m = re.search(r"(http://\S+)", log.read_text())
            url = m.group(1) if m else ""
            time.sleep(0.005)
        start_s = time.perf_counter() - start
        driver.get("data:text/html,<p>warm</p>")  # the browser's own start is not the board's
        static_s, _ = fetch(url + "static/board.css")
        page_s, page_bytes = fetch(url)
        first = paint(driver, url)
        again = statistics.median(paint(driver, url) for _ in range(5))
        people = statistics.median(paint(driver, url + "people") for _ in range(3))
        projects = statistics.median(paint(driver, url + "projects") for _ in range(3))
        driver.get(url)
        driver.execute_script("document.addEventListener('board:updated', "
                              "() => { window.boardUpdated = Date.now(); })")
        while "on" not in (driver.execute_script(
                "return document.getElementById('live').className") or ""):
            time.sleep(0.01)
        store = Store(root)
        tasks = load_org(store).tasks
        before = store.head_commit()
        moved: list[float] = []

        def watch() -> None:  # when the branch moved (commit() goes on to sync the checkout)
            ref = Store(root)
            while not moved:
                if ref.head_commit() != before:
                    moved.append(time.time())
                time.sleep(0.001)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        commit(store, lambda txn: new_task(txn, tasks, "Measure the live feed",
                                           assignee="coo"), PERSON)
        watcher.join(30)
        committed = moved[0] if moved else float("nan")
        updated = None
        end = time.monotonic() + 30
        while updated is None and time.monotonic() < end:
            updated = driver.execute_script("return window.boardUpdated || null")
            time.sleep(0.005)
        live_s = (float(updated) / 1000 - committed) if updated else float("nan")
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"{n:>7} tasks | aoi status {status_s:6.3f} s | board start {start_s:6.3f} s | "
          f"static fetch {static_s * 1000:6.1f} ms | work page fetch {page_s * 1000:6.1f} ms "
          f"({page_bytes / 1024:.0f} KB)")
    print(f"{'':>7}       | first paint: work {first:6.3f} s (first load), {again:6.3f} s "
          f"(median of 5) | people {people:6.3f} s | projects {projects:6.3f} s | "
          f"live update {live_s:6.3f} s after the commit")


def main() -> None:
    args = bench_parser(__doc__ or "").parse_args()
    base = Path(args.dir or tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="bench-board-", dir=base))
    driver = browser()
    try:
        for n in (int(x) for x in args.sizes.split(",")):
            run_size(work / f"org-{n}", n, driver)
    finally:
        driver.quit()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
