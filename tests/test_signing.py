"""Signed history (issue 17, point 4): every commit aoi makes carries git's SSH signature,
`git verify-commit` and `git log --show-signature` check it against the org's
`keys/allowed_signers`, and a server's `pre-receive` hook refuses a commit whose
`Aoi-Actor` trailer its signature does not back (a forged `daemon:evil` or `agent:coo`).

All on real git, real `ssh-keygen`, a real bare repository with the shipped hook, and the
real daemon and CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kit import AOI_BIN, PERSON_EMAIL, git
from orgkit import TmpOrg

from aoi_git.domain.model import Status
from aoi_git.store import signing, sshsig

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                                 reason="needs OpenSSH's ssh-keygen")]

REPO = Path(__file__).resolve().parent.parent

DONE = """
import json, os, pathlib
pathlib.Path("work.txt").write_text("done\\n")
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text(
    json.dumps({"outcome": "completed", "summary": "did it"}))
"""

FORGER = """
import os, pathlib, subprocess
pathlib.Path("work.txt").write_text("mine\\n")
subprocess.run(["git", "add", "work.txt"], check=True)
subprocess.run(["git", "-c", "user.name=w1", "-c", "user.email=w1@aoi.invalid", "commit",
                "-q", "-m", "work\\n\\nAoi-Task: t-forge1\\nAoi-Actor: daemon:evil"],
               check=True)
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text('{"outcome": "completed"}')
"""

PEEK = """
import json, os, pathlib
keys = pathlib.Path({keys!r})
try:
    seen = sorted(p.name for p in keys.iterdir())
    data = (keys / "host_ed25519").read_bytes().decode()
except OSError as exc:
    seen, data = [], f"refused: {{exc.strerror}}"
pathlib.Path({out!r}).write_text(json.dumps({{"seen": seen, "data": data}}))
pathlib.Path(os.environ["AOI_RESULT_FILE"]).write_text('{{"outcome": "completed"}}')
"""


def ssh_keygen(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ssh-keygen", *args], input=input, capture_output=True,
                          timeout=30, check=False)


def new_key(path: Path, kind: str = "ed25519") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    made = ssh_keygen("-q", "-t", kind, "-N", "", "-C", path.name, "-f", str(path))
    assert made.returncode == 0, made.stderr
    return path


def script_employee(org: TmpOrg, eid: str, source: str) -> None:
    agent = org.root / "agents" / f"{eid}.py"
    agent.write_text(source)
    profile = {"id": eid, "name": eid, "role": "engineer", "reports_to": "ceo",
               "status": "active", "capacity": {"concurrency": 1, "timeout_s": 60},
               "backend": {"kind": "script", "command": [sys.executable, str(agent)]}}
    (org.root / "employees" / eid).mkdir(parents=True, exist_ok=True)
    (org.root / "employees" / eid / "profile.yaml").write_text(
        yaml.safe_dump(profile, sort_keys=False))


def server(tmp_path: Path, org: TmpOrg) -> Path:
    """A bare repository guarded by the shipped pre-receive hook, holding the org."""
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    hook = bare / "hooks" / "pre-receive"
    shutil.copy(REPO / "hooks" / "pre-receive", hook)
    hook.chmod(0o755)
    git(bare, "config", "aoi.python", sys.executable)
    git(org.root, "remote", "add", "origin", str(bare))
    pushed = push(org.root)
    assert pushed.returncode == 0, pushed.stderr
    return bare


def push(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", "origin", "HEAD:main"], cwd=repo,
                          capture_output=True, text=True, timeout=120, check=False)


def clone(tmp_path: Path, bare: Path, name: str = "clone") -> Path:
    target = tmp_path / name
    git(tmp_path, "clone", "-q", str(bare), str(target))
    return target


def set_status(repo: Path, tid: str, status: str) -> None:
    path = next((repo / "tasks").rglob(f"{tid}.yaml"))
    kept = [ln for ln in path.read_text().splitlines() if not ln.startswith("status:")]
    path.write_text("\n".join([*kept, f"status: {status}"]) + "\n")


def commit_as(repo: Path, tid: str, transition: str, actor: str, *sign: str) -> None:
    git(repo, *sign, "commit", "-q", "--no-verify", "-am",
        f"aoi: {tid} {transition}\n\nAoi-Task: {tid}\nAoi-Transition: {transition}\n"
        f"Aoi-Actor: {actor}")


def ssh_sign(key: Path) -> tuple[str, ...]:
    """`git` options that make a commit signed by `key` through git's own ssh signing."""
    return ("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c",
            "commit.gpgsign=true")


def refused(result: subprocess.CompletedProcess[str], *why: str) -> None:
    assert result.returncode != 0, result.stderr
    assert "aoi: push refused" in result.stderr, result.stderr
    for text in why:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def org_with_task(tmp_path: Path) -> TmpOrg:
    org = TmpOrg(tmp_path)
    org.commit()
    org.new("t-forge1", "Ship it", assignee="coo")
    return org


# ------------------------------------------------------------------ the format
def test_an_in_process_signature_verifies_with_ssh_keygen_and_back(tmp_path: Path) -> None:
    signer, made = signing.ensure_host_key()
    assert made and oct(signer.path.stat().st_mode & 0o777) == "0o600"
    data = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nhello\n"
    (tmp_path / "sig").write_text(signer.sign(data))
    allowed = tmp_path / "allowed"
    allowed.write_text(sshsig.allowed_signer_line("host:box", signer.public) + "\n")
    ok = ssh_keygen("-Y", "verify", "-f", str(allowed), "-I", "host:box", "-n", "git",
                    "-s", str(tmp_path / "sig"), input=data)
    assert ok.returncode == 0, ok.stderr
    bad = ssh_keygen("-Y", "verify", "-f", str(allowed), "-I", "host:box", "-n", "git",
                     "-s", str(tmp_path / "sig"), input=data + b"x")
    assert bad.returncode != 0
    # and what ssh-keygen signs, with the key types people use, this module verifies
    for kind in ("ed25519", "rsa", "ecdsa"):
        key = new_key(tmp_path / kind / "id", kind)
        (tmp_path / kind / "data").write_bytes(data)
        signed = ssh_keygen("-Y", "sign", "-f", str(key), "-n", "git",
                            str(tmp_path / kind / "data"))
        assert signed.returncode == 0, signed.stderr
        sig = sshsig.parse((tmp_path / kind / "data.sig").read_text())
        assert sig.public_key == sshsig.PublicKey.parse(
            (tmp_path / kind / "id.pub").read_text())
        assert sig.verifies(data), kind
        assert not sig.verifies(data + b"x"), kind


def test_the_allowed_signers_file_is_read_as_ssh_keygen_reads_it(tmp_path: Path) -> None:
    signer, _ = signing.ensure_host_key()
    key = signer.public.openssh
    text = (f"# a comment\n\nhost:a,host:b {key}\n"
            f'ana@example.com namespaces="file,git",valid-after="20200101" {key} ana\n'
            f'bob@example.com namespaces="file" {key}\n'
            f"ca@example.com cert-authority {key}\n"
            "zed@example.com ssh-ed25519 AAAA!\n")
    signers, problems = sshsig.parse_allowed_signers(text)
    assert [(s.principals, s.line, s.allows("git")) for s in signers] == [
        (("host:a", "host:b"), 3, True), (("ana@example.com",), 4, True),
        (("bob@example.com",), 5, False)]
    assert [n for n, _ in problems] == [6, 7]
    # ssh-keygen agrees on who may sign for git with this key
    (tmp_path / "allowed").write_text(text.replace("ca@example.com cert-authority", "#"))
    (tmp_path / "data").write_bytes(b"x")
    (tmp_path / "data.sig").write_text(signer.sign(b"x"))
    for who in ("host:b", "ana@example.com", "bob@example.com"):
        ok = ssh_keygen("-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", who, "-n",
                        "git", "-s", str(tmp_path / "data.sig"), input=b"x")
        assert (ok.returncode == 0) is (who != "bob@example.com"), (who, ok.stderr)


def test_every_commit_of_a_real_daemon_run_verifies_with_git(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    script_employee(org, "w1", DONE)
    org.commit()
    org.new("t-job", "Do the work", assignee="w1")
    run = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert org.task("t-job").status is Status.FINISHED
    # aoi's own commits, on every branch (the agent's work, the merge, the transitions)
    by_aoi = git(org.root, "log", "--all", "--format=%H",
                 "--grep=^Aoi-Actor: \\(daemon\\|agent\\):").split()
    assert len(by_aoi) >= 5
    for sha in by_aoi:
        check = subprocess.run(["git", "verify-commit", sha], cwd=org.root,
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
        assert f'Good "git" signature for {signing.host_principal()}' in check.stderr
    # the founding commit too, and `git log --show-signature` says so
    root = git(org.root, "rev-list", "--max-parents=0", "HEAD").strip()
    shown = git(org.root, "log", "--show-signature", "-1", root)
    assert 'Good "git" signature for host:' in shown
    # the person's own (unsigned) set-up commit is the only one without a signature
    marks = git(org.root, "log", "--format=%G? %s").splitlines()
    assert [m for m in marks if not m.startswith("G ")] == ["N test set-up"]


# ------------------------------------------------------------------ the server
def test_the_server_refuses_forged_trailers_and_takes_the_daemons_history(
        tmp_path: Path) -> None:
    org = org_with_task(tmp_path)
    bare = server(tmp_path, org)
    work = clone(tmp_path, bare)
    before = git(bare, "rev-parse", "main")

    # the finding: a person's push claiming the daemon claimed the task
    set_status(work, "t-forge1", "processing")
    commit_as(work, "t-forge1", "pending->processing", "daemon:evil")
    refused(push(work), "Aoi-Actor daemon:evil is not signed",
            "must be signed by a host key")
    # ... or that the COO finished it
    git(work, "reset", "-q", "--hard", "origin/main")
    set_status(work, "t-forge1", "completed")
    commit_as(work, "t-forge1", "pending->completed", "agent:coo")
    refused(push(work), "Aoi-Actor agent:coo is not signed")
    # signed by the person's own key, listed for them: still not a host's
    person = new_key(tmp_path / "ana" / "id_ed25519")
    listed = subprocess.run([str(AOI_BIN), "-C", str(org.root), "keys", "add", PERSON_EMAIL,
                             f"{person}.pub"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert push(org.root).returncode == 0
    git(work, "fetch", "-q")
    git(work, "reset", "-q", "--hard", "origin/main")
    set_status(work, "t-forge1", "processing")
    commit_as(work, "t-forge1", "pending->processing", "daemon:evil", *ssh_sign(person))
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in git(work, "cat-file", "commit", "HEAD")
    refused(push(work), f"is signed by {PERSON_EMAIL}: daemon and agent commits")
    # unsigned, with this host's own name in the trailer
    git(work, "reset", "-q", "--hard", "origin/main")
    set_status(work, "t-forge1", "processing")
    commit_as(work, "t-forge1", "pending->processing", f"daemon:{signing.host_id()}")
    refused(push(work), "is not signed")
    assert git(bare, "rev-parse", "main") != before  # (the key's commit went in)
    mid = git(bare, "rev-parse", "main")

    # the daemon's real history goes in
    script_employee(org, "w1", DONE)
    org.commit("hire w1")
    org.new("t-real", "Real work", assignee="w1")
    run = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert org.task("t-real").status is Status.FINISHED
    pushed = push(org.root)
    assert pushed.returncode == 0, pushed.stderr
    assert git(bare, "rev-parse", "main") == git(org.root, "rev-parse", "HEAD") != mid
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bare, capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stderr


def test_an_altered_signed_commit_and_a_self_authorized_key_are_refused(
        tmp_path: Path) -> None:
    org = org_with_task(tmp_path)
    bare = server(tmp_path, org)
    work = clone(tmp_path, bare)
    # a daemon commit made on a host the org lists...
    run = subprocess.run([str(AOI_BIN), "-C", str(work), "task", "cancel", "t-forge1"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    # ... with its message changed afterwards, the signature kept
    raw = subprocess.run(["git", "cat-file", "commit", "HEAD"], cwd=work, capture_output=True,
                         check=True).stdout
    forged = raw.replace(b"Aoi-Actor: human:", b"Aoi-Actor: daemon:")
    assert forged != raw and b"gpgsig" in forged
    sha = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=work,
                         input=forged, capture_output=True, check=True).stdout.decode().strip()
    git(work, "update-ref", "refs/heads/main", sha)
    refused(push(work), "the signature does not verify")

    # a new host registers itself, signed by its own key: a push cannot authorize itself
    git(work, "reset", "-q", "--hard", "origin/main")
    other = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "box2-config"),
             "AOI_HOST_ID": "box2"}
    made = subprocess.run([str(AOI_BIN), "init", str(work)], env=other, capture_output=True,
                          text=True, check=False)
    assert made.returncode == 0, made.stderr
    assert "register it with `aoi keys add host:box2`" in made.stdout
    added = subprocess.run([str(AOI_BIN), "-C", str(work), "keys", "add", "host:box2"],
                           env=other, capture_output=True, text=True, check=False)
    assert added.returncode == 0, added.stderr
    refused(push(work), f"changes {signing.ALLOWED_SIGNERS} but is signed by a key not in")
    # registered by a host the org lists, box2's daemon commits go in
    git(work, "reset", "-q", "--hard", "origin/main")
    host_line = subprocess.run([str(AOI_BIN), "keys", "host"], env=other, capture_output=True,
                               text=True, check=True).stdout.split(" ", 1)
    assert host_line[0] == "host:box2"
    listed = subprocess.run([str(AOI_BIN), "-C", str(org.root), "keys", "add", "host:box2",
                             host_line[1].strip()], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert push(org.root).returncode == 0
    git(work, "pull", "-q", "--ff-only")
    cancel = subprocess.run([str(AOI_BIN), "-C", str(work), "task", "new", "From box2"],
                            env=other, capture_output=True, text=True, check=False)
    assert cancel.returncode == 0, cancel.stderr
    assert "Good \"git\" signature for host:box2" in git(work, "log", "-1", "--show-signature")
    pushed = push(work)
    assert pushed.returncode == 0, pushed.stderr
    # a line that is no key, in a commit signed by a listed host: refused, named
    with (work / signing.ALLOWED_SIGNERS).open("a") as fh:
        fh.write("ops@example.com ssh-ed25519 not-base64!\n")
    line = len((work / signing.ALLOWED_SIGNERS).read_text().splitlines())
    git(work, *ssh_sign(signing.host_key_path()), "commit", "-q", "--no-verify", "-am", "k")
    refused(push(work), f"{signing.ALLOWED_SIGNERS}:{line}: not an SSH public key")


def test_the_org_decides_whether_people_must_sign(tmp_path: Path) -> None:
    org = org_with_task(tmp_path)
    ana = new_key(tmp_path / "ana" / "id_ed25519")
    bob = new_key(tmp_path / "bob" / "id_ed25519")
    listed = subprocess.run([str(AOI_BIN), "-C", str(org.root), "keys", "add", "ceo",
                             f"{ana}.pub"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert PERSON_EMAIL in listed.stdout  # the CEO of aoi.yaml, by their e-mail
    org.edit_config(lambda d: d.update(signing={"require_person_signatures": True}))
    org.commit("people sign")
    bare = server(tmp_path, org)
    work = clone(tmp_path, bare)

    (work / "tasks" / "by-hand.yaml").write_text("title: By hand\nassignee: coo\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "--no-verify", "-m", "unsigned")
    refused(push(work), "human:", "is not signed", "signing.require_person_signatures")
    git(work, *ssh_sign(bob), "commit", "-q", "--amend", "--no-edit")  # not the author's
    refused(push(work), "is signed by a key not in", "signing.require_person_signatures")
    # the CEO registers bob: a person's commit, so under this policy signed by their key
    git(org.root, "config", "gpg.format", "ssh")
    git(org.root, "config", "user.signingkey", str(ana))
    bob_listed = subprocess.run([str(AOI_BIN), "-C", str(org.root), "keys", "add",
                                 "bob@example.com", f"{bob}.pub"], capture_output=True,
                                text=True, check=False)
    assert bob_listed.returncode == 0, bob_listed.stderr
    assert push(org.root).returncode == 0
    git(work, "fetch", "-q")
    git(work, "rebase", "-q", "origin/main")
    git(work, *ssh_sign(bob), "commit", "-q", "--amend", "--no-edit")
    refused(push(work), f"authored as {PERSON_EMAIL} but signed by bob@example.com")
    git(work, *ssh_sign(ana), "commit", "-q", "--amend", "--no-edit")
    pushed = push(work)
    assert pushed.returncode == 0, pushed.stderr
    # aoi's own commits for the person are signed by their key when git names it
    git(work, "config", "gpg.format", "ssh")
    git(work, "config", "user.signingkey", f"{ana}.pub")
    git(work, "config", "gpg.ssh.allowedSignersFile", str(work / signing.ALLOWED_SIGNERS))
    made = subprocess.run([str(AOI_BIN), "-C", str(work), "task", "new", "Signed by ana"],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    assert f'Good "git" signature for {PERSON_EMAIL}' in git(work, "log", "-1",
                                                                "--show-signature")
    pushed = push(work)
    assert pushed.returncode == 0, pushed.stderr


# ------------------------------------------------------------------ keys and the box
def test_aoi_keys_lists_adds_and_removes(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    org.commit()

    def aoi(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AOI_BIN), "-C", str(org.root), "keys", *args],
                              capture_output=True, text=True, check=False)

    first = aoi("list")
    assert first.returncode == 0 and first.stdout.startswith(f"* {signing.host_principal()}")
    assert "listed already" in aoi("add", signing.host_principal()).stdout
    key = new_key(tmp_path / "k" / "id_ed25519")
    assert aoi("add", "ana@example.com", f"{key}.pub").returncode == 0
    assert "ana@example.com" in aoi("list").stdout
    for bad, why in ((("add", "nobody", f"{key}.pub"), "neither host:<id>"),
                     (("add", "ana@example.com", "/no/such.pub"), "cannot read the public key"),
                     (("add", "host:elsewhere"), "give the key of host:elsewhere"),
                     (("remove", "zed@example.com"), "has no key")):
        out = aoi(*bad)
        assert out.returncode == 1 and why in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert aoi("remove", "ana@example.com").returncode == 0
    assert "ana@example.com" not in aoi("list").stdout
    msg = git(org.root, "log", "-1", "--format=%B")
    assert "aoi: keys: remove ana@example.com" in msg and "Aoi-Actor: human:" in msg


def test_an_agent_cannot_read_the_hosts_signing_key(tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    out = org.shared / "peek.json"
    script_employee(org, "w1", PEEK.format(keys=str(signing.keys_dir()), out=str(out)))
    org.commit()
    org.new("t-peek", "Peek", assignee="w1")
    run = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert signing.host_key_path().is_file()
    seen = json.loads(out.read_text())
    assert seen == {"seen": [], "data": "refused: No such file or directory"}


def test_an_agents_own_commit_with_aoi_trailers_is_refused_before_review(
        tmp_path: Path) -> None:
    org = TmpOrg(tmp_path)
    script_employee(org, "w1", FORGER)
    org.config(max_review_rounds=1)
    org.commit()
    org.new("t-forger", "Forge", assignee="w1")
    run = subprocess.run([str(AOI_BIN), "-C", str(org.root), "daemon", "--until-idle"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    task = org.task("t-forger")
    assert task.status is not Status.FINISHED
    said = json.dumps([dict(f) if isinstance(f, dict) else f for f in task.feedback])
    assert "Aoi-* trailers, which only aoi writes" in said and "Reword the commits" in said
    assert "daemon:evil" not in git(org.root, "log", "--format=%B", "main")
    # and the host's history still passes a server
    bare = server(tmp_path, org)
    assert git(bare, "rev-parse", "main") == git(org.root, "rev-parse", "main")
