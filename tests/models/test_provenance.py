"""The commit on a model's run and card is retain's own, wherever the command runs."""

from __future__ import annotations

import subprocess
import sys

from models.provenance import CODE_ROOT, UNKNOWN

CHILD = "from models.provenance import code_commit; print(code_commit())"


def git(*args: str, cwd) -> str:
    found = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return found.stdout.strip()


def commit_seen_from(folder) -> str:
    """What a fresh process started in ``folder`` (another repository, a data folder) names."""
    found = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=folder, capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def test_from_another_repository_the_commit_is_retains(tmp_path):
    other = tmp_path / "analysis"
    other.mkdir()
    git("init", "-q", cwd=other)
    (other / "notes.md").write_text("a data scientist's own repository\n")
    git("add", "notes.md", cwd=other)
    identity = ["-c", "user.name=ds", "-c", "user.email=ds@bank.example"]
    git(*identity, "commit", "-q", "-m", "notes", cwd=other)
    theirs, ours = git("rev-parse", "HEAD", cwd=other), git("rev-parse", "HEAD", cwd=CODE_ROOT)

    assert commit_seen_from(other) == ours != theirs


def test_from_a_folder_outside_any_repository_the_commit_is_still_known(tmp_path):
    seen = commit_seen_from(tmp_path)
    assert seen != UNKNOWN and len(seen) == 40
