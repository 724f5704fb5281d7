"""Twenty users at once on ONE real server: each gets its own, correct answer; nothing hits the disk.

Runs :mod:`bench.load_test`'s check with :data:`SESSIONS` browser sessions (headless Chromium,
one context each) that upload :data:`SESSIONS` different images at the same moment through the
real HTTP upload path. Every session must show, for its own file, the P(fractured) and verdict
that ``core`` computes for those bytes, both images, and no exception. The figures (latency, the
server's peak memory) are printed; run with ``-s`` to see them. For bigger runs:
``.venv/bin/python -m bench.load_test --sessions 40``.

Around the same run, the privacy check that AppTest cannot make: the server gets a temporary
directory of its own, which must stay empty, and the project directory must gain or change no
file (other than .py/.md sources that people edit on a shared working tree).
"""

import os
from pathlib import Path

import pytest

from bench import app_harness
from core.config import PROJECT_DIR

SESSIONS = 20
SESSION_TIMEOUT_S = 900  # generous: 20 Chromium pages and the server share 2 CPU cores in CI
SKIPPED_DIRS = {".venv", ".git", "__pycache__", ".pytest_cache", ".cache", ".hypothesis"}
SOURCE_SUFFIXES = (".py", ".md")

pytest.importorskip("playwright.async_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(not app_harness.CHROMIUM.exists(), reason=f"no Chromium at {app_harness.CHROMIUM}")


def _snapshot(root: Path) -> dict[str, int]:
    """``{path: mtime_ns}`` of the files under ``root`` (no caches, venv, git or .py/.md sources)."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [name for name in dirs if name not in SKIPPED_DIRS]
        for name in names:
            if name.endswith(SOURCE_SUFFIXES):
                continue
            path = os.path.join(folder, name)
            try:
                files[path] = os.stat(path).st_mtime_ns
            except FileNotFoundError:
                continue
    return files


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from bench import load_test

    server_tmp = tmp_path_factory.mktemp("server-tmp")
    before = _snapshot(PROJECT_DIR)
    report = load_test.run_load_test(SESSIONS, timeout_s=SESSION_TIMEOUT_S, server_env={
        "TMPDIR": str(server_tmp), "TEMP": str(server_tmp), "TMP": str(server_tmp)})
    after = _snapshot(PROJECT_DIR)
    print("\n" + report.summary())
    return report, server_tmp, before, after


def test_every_session_sees_its_own_correct_verdict(run):
    report = run[0]
    assert len(report.results) == SESSIONS
    assert len({result.upload.data for result in report.results}) == SESSIONS  # all different images
    assert report.errors == [], report.summary()
    assert report.correct == SESSIONS, report.summary() + "\n" + "\n".join(report.server_log_tail[-30:])
    # Not all the same answer: the sessions really got different verdicts for different images.
    assert len({result.shown_probability for result in report.results}) > 1


def test_real_uploads_leave_no_file_on_the_server(run):
    report, server_tmp, before, after = run
    assert report.correct == SESSIONS  # the uploads really went through
    assert sorted(path.name for path in server_tmp.rglob("*")) == []
    new = sorted(after.keys() - before.keys())
    changed = sorted(path for path in before.keys() & after.keys() if before[path] != after[path])
    assert new == [] and changed == [], f"new: {new}; changed: {changed}"
