"""The run's steps: a step beside the check before it is put in place only once the check has
passed, stops when the check fails and leaves what it wrote before as it was."""

from __future__ import annotations

import json
import threading
import time

from retain.steps import DONE, FAILED, NOT_RUN, RUN_FILE, SKIPPED, Hooks, Step, StepFailed
from retain.steps import run_steps as run

QUIET = Hooks(start=lambda name: None, update=lambda name, text: None, end=lambda record: None)


class Beside:
    """A check and the step after it, talking through events: the check waits until the step
    has begun, then passes or fails; the step reports progress ``parts`` times."""

    def __init__(self, folder, check_fails: bool, step_fails: bool = False, parts: int = 200):
        self.folder, self.check_fails, self.step_fails, self.parts = (
            folder,
            check_fails,
            step_fails,
            parts,
        )
        self.begun, self.checked = threading.Event(), threading.Event()
        self.reported, self.output_there_while_checking = 0, None

    def check(self, update, out):
        assert self.begun.wait(10)
        time.sleep(0.2)
        self.checked.set()
        if self.check_fails:
            raise StepFailed("2 violation(s) in the warehouse")
        out.write_text("valid")
        return {"violations": 0}

    def step(self, update, out):
        update("part 0")
        self.begun.set()
        for part in range(1, self.parts):
            time.sleep(0.01)
            if not self.checked.is_set():
                self.output_there_while_checking = (self.folder / "features.txt").read_text()
            update(f"part {part}")
            self.reported = part
        if self.step_fails:
            raise ValueError("the cutoff's month has no rows")
        out.write_text("new")
        return {"rows": 3}

    def steps(self, fingerprints=("w", "w")) -> list[Step]:
        last = Step("score", self.folder / "scores.txt", lambda: None, _write("scored"))
        return [
            Step("validate", self.folder / "validate.json", lambda: fingerprints[0], self.check),
            Step(
                "features",
                self.folder / "features.txt",
                lambda: fingerprints[1],
                self.step,
                beside_check=True,
            ),
            last,
        ]


def _write(text):
    def work(update, out):
        out.write_text(text)
        return {}

    return work


def test_a_failed_check_stops_the_step_beside_it_and_keeps_what_it_wrote_before(tmp_path):
    (tmp_path / "features.txt").write_text("last month's")
    pair = Beside(tmp_path, check_fails=True)

    records, payload = run(pair.steps(), tmp_path, False, QUIET, {})

    validate, features, score = records
    assert (validate.status, features.status, score.status) == (FAILED, NOT_RUN, NOT_RUN)
    assert "2 violation(s)" in validate.error and features.error is None
    assert features.detail == {"stopped": "validate failed"}
    assert 0 < pair.reported < pair.parts - 1  # it stopped at a report after the failure
    assert (tmp_path / "features.txt").read_text() == "last month's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.txt", RUN_FILE]
    assert payload["status"] == "failed"
    saved = json.loads((tmp_path / RUN_FILE).read_text())["steps"]
    assert [s["status"] for s in saved] == [FAILED, NOT_RUN, NOT_RUN]


def test_a_passed_check_puts_the_step_beside_it_in_place_after_it(tmp_path):
    (tmp_path / "features.txt").write_text("last month's")
    pair = Beside(tmp_path, check_fails=False, parts=5)

    records, payload = run(pair.steps(), tmp_path, False, QUIET, {})

    validate, features, score = records
    assert [r.status for r in records] == [DONE, DONE, DONE] and payload["status"] == "ok"
    # the step finished while the check still ran, and its output waited for the check
    assert pair.output_there_while_checking == "last month's"
    assert features.seconds < validate.seconds
    assert (tmp_path / "features.txt").read_text() == "new"
    assert validate.runs_on == {"beside": "features"} and features.runs_on == {"beside": "validate"}
    assert validate.cpu_seconds == features.cpu_seconds and validate.peak_rss_mb > 0
    assert not list(tmp_path.glob(".*"))  # no staging left

    # the warehouse unchanged, a changed configuration: the check is skipped, the step runs alone
    again = Beside(tmp_path, check_fails=True, parts=3)
    again.begun.set()  # nothing to wait for: the check is not run
    records, _ = run(again.steps(("w", "w2")), tmp_path, False, QUIET, {})
    assert [r.status for r in records] == [SKIPPED, DONE, DONE]
    assert records[1].runs_on == {}


def test_a_step_that_fails_beside_a_passed_check_fails_alone(tmp_path):
    (tmp_path / "features.txt").write_text("last month's")
    pair = Beside(tmp_path, check_fails=False, step_fails=True, parts=3)

    records, _ = run(pair.steps(), tmp_path, False, QUIET, {})

    assert [r.status for r in records] == [DONE, FAILED, NOT_RUN]
    assert records[1].error == "ValueError: the cutoff's month has no rows"
    assert (tmp_path / "features.txt").read_text() == "last month's"
    assert not list(tmp_path.glob(".*"))
