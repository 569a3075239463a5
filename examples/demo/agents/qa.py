"""QA: reviews a task by running the unit tests of the code under review.

The code under review is the subject's branch `aoi/<subject>` (or, when that branch is
already merged, e.g. for a decomposed root, the workspace base). It is unpacked into a
temporary folder, so the review itself changes nothing. The merged whole of a project
must also say how to use it (textkit/README.md).
"""

import json
import os
import subprocess
import sys
import tarfile
import tempfile

with open(os.environ["AOI_TASK_FILE"]) as fh:
    task = json.load(fh)
subject = task.get("subject")
base = os.environ.get("AOI_WORKSPACE_BASE", "main")
branch = f"aoi/{subject}"


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True)


rev = branch
if git("rev-parse", "--verify", "-q", branch).returncode != 0 or \
        git("merge-base", "--is-ancestor", branch, base).returncode == 0:
    rev = base
with tempfile.TemporaryDirectory() as tmp:
    archive = os.path.join(tmp, "tree.tar")
    with open(archive, "wb") as fh:
        subprocess.run(["git", "archive", "--format=tar", rev, "--", "."], stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(os.path.join(tmp, "src"), filter="data")
    src = os.path.join(tmp, "src")
    if not os.path.isdir(os.path.join(src, "tests")):
        decision = {"decision": "accept", "feedback": "No tests to run; nothing to object to."}
        summary = f"Reviewed {rev}: no tests."
    else:
        run = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests"],
                             cwd=src, capture_output=True, text=True, timeout=120)
        tail = "\n".join(run.stderr.strip().splitlines()[-12:])
        merged = rev == base  # the merged whole of a decomposed project
        undocumented = merged and os.path.isfile(os.path.join(src, "textkit", "__main__.py")) \
            and not os.path.isfile(os.path.join(src, "textkit", "README.md"))
        if run.returncode == 0 and undocumented:
            decision = {"decision": "reject",
                        "feedback": "The tests pass, but textkit ships no usage documentation: "
                                    "add textkit/README.md saying how to run python -m textkit."}
            summary = f"Ran the unit tests on {rev}: they pass; the package is undocumented."
        elif run.returncode == 0:
            decision = {"decision": "accept", "feedback": f"All tests pass on {rev}."}
            summary = f"Ran the unit tests on {rev}: {tail.splitlines()[-1] if tail else 'ok'}."
        else:
            decision = {"decision": "reject",
                        "feedback": f"The unit tests fail on {rev}; fix the failing test:\n{tail}"}
            summary = f"Ran the unit tests on {rev}: they fail."

with open(os.environ["AOI_RESULT_FILE"], "w") as fh:
    json.dump({"outcome": "completed", "summary": summary, "review": decision}, fh)
