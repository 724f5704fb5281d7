"""Many users at once: N browser sessions upload N different X-rays to ONE Streamlit server.

    .venv/bin/python -m bench.load_test [--sessions 20] [--timeout 600]

Starts one `streamlit run streamlit_app.py` on a free loopback port and opens N sessions in
headless Chromium (one browser, a separate context per session, so each is its own Streamlit
session), both through bench/app_harness.py. When every page is ready, all N upload at the same
moment, each a DIFFERENT image: FracAtlas test radiographs from ../shared/datasets/fracatlas
when present, else distinct synthetic PNGs. The images are handed to the browser from memory,
never written to disk.

A session is correct when its page shows, in the verdict naming its own file, the P(fractured)
that `core` computes for those bytes (``FractureClassifier.load().classify``, to the page's 3
decimals) and the verdict at the threshold a new session starts at (the screening preset), both
images have loaded, and there is no exception element. Prints sessions, correct count, errors,
wall time, per-session latency (upload to answer) p50/p95/max, and the server's peak memory,
polled from /proc (VmRSS of the server's process tree, and the kernel's high-water mark VmHWM).
Exit status 0 iff every session is correct. tests/load/test_concurrent_sessions.py runs the same
code with 20 sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import app_harness
from training.config import DEFAULT_DATA_DIR

DATA_DIR = DEFAULT_DATA_DIR
# A new session decides at this preset (ui/state.py); each session checks its slider shows it.
APP_START_PRESET = "screening"
# From the first sight of the answer to the end of its run: a deadline for a condition, generous
# because 20 sessions' runs and the browser share 2 cores (a session that misses it fails).
SETTLE_TIMEOUT_MS = 600_000
PROBABILITY = re.compile(r"P\(fractured\) = ([0-9.]+)")
# Nothing on the deployed server watches the source: nobody edits it under a running load test,
# and watching a working tree (with its .venv) costs CPU and overflows inotify queues.
SERVER_FLAGS = ("--server.fileWatcherType", "none")


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    mime: str
    expected_probability: float | None = None  # from core, for these bytes


@dataclass
class SessionResult:
    upload: Upload
    expected_threshold: float  # the start preset's exact value
    start_threshold: float | None = None  # what the session's slider showed when the page opened
    shown_text: str | None = None
    latency_s: float | None = None
    images: int = 0
    exceptions: int = 0
    error: str | None = None

    @property
    def shown_probability(self) -> str | None:
        match = PROBABILITY.search(self.shown_text or "")
        return match.group(1) if match else None

    @property
    def expected_probability(self) -> str:
        """Formatted as the page shows it."""
        return f"{self.upload.expected_probability:.3f}"

    @property
    def expected_verdict(self) -> str:
        from core.reports import VERDICT_TEXT
        from core.thresholds import decide

        return VERDICT_TEXT[decide(self.upload.expected_probability, self.expected_threshold)]

    @property
    def started_at_expected_threshold(self) -> bool:
        # The slider shows its value snapped to its 0.001 step.
        return self.start_threshold is not None and abs(self.start_threshold - self.expected_threshold) <= 6e-4

    @property
    def correct(self) -> bool:
        return (self.error is None and self.exceptions == 0 and self.images >= 2
                and self.started_at_expected_threshold
                and self.shown_probability == self.expected_probability
                and self.upload.name in (self.shown_text or "")
                and self.shown_verdicts == [self.expected_verdict])

    @property
    def shown_verdicts(self) -> list[str]:
        """The verdict words in the alert (it opens with the triage band, then says the verdict)."""
        from core.reports import VERDICT_TEXT

        return [text for text in VERDICT_TEXT.values() if text in (self.shown_text or "")]


@dataclass
class LoadReport:
    results: list[SessionResult]
    wall_s: float
    peak_rss_mb: float
    peak_hwm_mb: float
    server_cpu_s: float
    load_average: tuple[float, float]  # the machine's 1-minute load average at start and end
    image_source: str
    server_log_tail: list[str] = field(default_factory=list)

    @property
    def correct(self) -> int:
        return sum(result.correct for result in self.results)

    @property
    def errors(self) -> list[str]:
        return [f"{result.upload.name}: {result.error}" for result in self.results if result.error]

    def latency(self, quantile: float) -> float:
        values = sorted(result.latency_s for result in self.results if result.latency_s is not None)
        if not values:
            return float("nan")
        return statistics.quantiles(values, n=100, method="inclusive")[round(quantile * 100) - 1] \
            if len(values) > 1 else values[0]

    def summary(self) -> str:
        latencies = [result.latency_s for result in self.results if result.latency_s is not None]
        wrong = [f"  {result.upload.name}: expected {result.expected_verdict} P={result.expected_probability} "
                 f"at threshold {result.expected_threshold:.6f}, page started at {result.start_threshold} "
                 f"and said {result.shown_text!r}, images={result.images}, exceptions={result.exceptions}, "
                 f"error={result.error}"
                 for result in self.results if not result.correct]
        lines = [
            f"sessions: {len(self.results)} ({self.image_source})",
            f"correct: {self.correct}/{len(self.results)}",
            f"errors: {len(self.errors)}",
            f"wall time: {self.wall_s:.1f} s (all pages open, then all upload at once)",
            f"latency upload -> verdict + both images: p50 {self.latency(0.50):.2f} s, "
            f"p95 {self.latency(0.95):.2f} s, max {max(latencies, default=float('nan')):.2f} s",
            f"server peak memory: RSS {self.peak_rss_mb:.0f} MB (sampled, process tree), "
            f"VmHWM {self.peak_hwm_mb:.0f} MB",
            f"server CPU time: {self.server_cpu_s:.1f} s; machine load average (1 min): "
            f"{self.load_average[0]:.1f} at start, {self.load_average[1]:.1f} at end on {os.cpu_count()} CPUs",
        ]
        return "\n".join(lines + (["wrong sessions:"] + wrong if wrong else []))


# --- images ---------------------------------------------------------------------------------------

def session_uploads(count: int) -> tuple[list[Upload], str]:
    """``count`` distinct images: FracAtlas test radiographs when present, else synthetic PNGs."""
    uploads = _fracatlas_uploads(count) if (DATA_DIR / "labels.csv").is_file() else []
    if len(uploads) >= count:
        return uploads[:count], "FracAtlas test images"
    return [_synthetic_upload(index) for index in range(count)], "synthetic PNGs (FracAtlas not found)"


def _fracatlas_uploads(count: int) -> list[Upload]:
    with open(DATA_DIR / "labels.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    uploads, seen = [], set()
    for row in rows:
        data = (DATA_DIR / row["path"]).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest not in seen:  # distinct bytes, so no two sessions share a cache entry
            seen.add(digest)
            uploads.append(Upload(Path(row["path"]).name, data, "image/jpeg"))
        if len(uploads) == count:
            break
    return uploads


def _synthetic_upload(index: int) -> Upload:
    """A grey "limb" (a blurred bright band) whose place, width, brightness and noise vary with
    ``index``, every third with a sharp bright line: the model's answers spread over [0, 1]."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(5000 + index)
    height, width = 360 + 7 * index, 300 + 5 * index
    columns = np.arange(width)[None, :]
    centre, spread = width * (0.3 + 0.04 * (index % 12)), 30 + 6 * (index % 12)
    limb = np.exp(-((columns - centre) / spread) ** 2) * (120 + 8 * (index % 12))
    pixels = np.clip(20 + limb + rng.normal(0, 3 + index % 12, (height, width)), 0, 255).astype(np.uint8)
    if index % 3 == 0:
        pixels[:, int(centre) : int(centre) + 4] = 240
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return Upload(f"synthetic_{index:03d}.png", buffer.getvalue(), "image/png")


def with_expected_answers(uploads: list[Upload]) -> tuple[list[Upload], float]:
    """Each upload with the probability ``core`` gives for its bytes, and the exact threshold a
    new session of the app starts at."""
    from core.classifier import FractureClassifier

    classifier = FractureClassifier.load()
    answered = [Upload(upload.name, upload.data, upload.mime, classifier.classify(upload.data).probability_fractured)
                for upload in uploads]
    return answered, classifier.thresholds[APP_START_PRESET]


# --- the server -----------------------------------------------------------------------------------

class ServerUsage:
    """Polls /proc for the server process tree: peak summed VmRSS, the main process's VmHWM
    (the kernel's own peak, which catches spikes between samples) and CPU time used meanwhile."""

    def __init__(self, pid: int, interval_s: float = 0.2):
        self.pid, self.interval_s = pid, interval_s
        self.peak_rss_kb = self.peak_hwm_kb = 0
        self.cpu_s = 0.0
        self._cpu_at_start = _cpu_seconds(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "ServerUsage":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()
        self.cpu_s = _cpu_seconds(self.pid) - self._cpu_at_start

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        rss = 0
        for pid in self._tree(self.pid):
            fields = _status_kb(pid)
            rss += fields.get("VmRSS", 0)
            if pid == self.pid:
                self.peak_hwm_kb = max(self.peak_hwm_kb, fields.get("VmHWM", 0))
        self.peak_rss_kb = max(self.peak_rss_kb, rss)

    @staticmethod
    def _tree(pid: int) -> list[int]:
        pids, todo = [], [pid]
        while todo:
            current = todo.pop()
            pids.append(current)
            for task in Path(f"/proc/{current}/task").glob("*"):
                try:
                    todo.extend(int(child) for child in (task / "children").read_text().split())
                except OSError:
                    continue
        return pids

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_kb / 1024

    @property
    def peak_hwm_mb(self) -> float:
        return self.peak_hwm_kb / 1024


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its waited-for children, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the process ended between listing and reading
        return {}
    return {key: int(value.split()[0]) for key, value in
            (line.split(":", 1) for line in text.splitlines() if line.startswith(("VmRSS", "VmHWM")))}


# --- the browser sessions -------------------------------------------------------------------------

async def _open_session(browser, url: str, timeout_ms: int):
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(timeout_ms)  # every implicit wait too (Playwright's own default is 30 s)
    page = await context.new_page()
    await page.goto(url, timeout=timeout_ms)
    await page.wait_for_selector(app_harness.UPLOADER, state="attached", timeout=timeout_ms)
    await page.wait_for_selector(app_harness.SLIDER_INPUT, state="attached", timeout=timeout_ms)
    return context, page


async def _settled_counts(page, name: str, timeout_ms: int) -> dict:
    """``{"pictures", "exceptions"}`` once the run has ended with ``name``'s verdict and both
    pictures; after ``timeout_ms`` without that, what the page holds then (the session fails)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    try:
        settled = await page.wait_for_function(app_harness.SETTLED_ANSWER,
                                               arg=app_harness.answer_shown_arg([name], 2),
                                               timeout=timeout_ms, polling=250)
        return await settled.json_value()
    except PlaywrightTimeoutError:
        return {"pictures": await page.evaluate(app_harness.PICTURES_SHOWN),
                "exceptions": await page.locator("[data-testid=stException]").count()}


async def _upload_and_read(page, upload: Upload, threshold: float, go: asyncio.Event,
                           timeout_ms: int) -> SessionResult:
    result = SessionResult(upload, threshold)
    try:
        result.start_threshold = float(await page.locator(app_harness.SLIDER_INPUT).get_attribute(
            "value", timeout=timeout_ms))
    except Exception as error:
        result.error = f"no threshold slider: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
    await go.wait()
    started = time.perf_counter()
    try:
        await page.set_input_files(app_harness.UPLOADER,
                                   files=[{"name": upload.name, "mimeType": upload.mime, "buffer": upload.data}],
                                   timeout=timeout_ms)  # not Playwright's 30 s: 20 pages share 2 cores
        await page.wait_for_function(app_harness.ANSWER_SHOWN, arg=app_harness.answer_shown_arg([upload.name], 2),
                                     timeout=timeout_ms, polling=250)
        result.latency_s = time.perf_counter() - started
        # Read once the run has ended: while the page is still settling, Plotly may be redrawing the
        # viewer (an image without its source for a moment), which is no missing picture.
        counts = await _settled_counts(page, upload.name, min(timeout_ms, SETTLE_TIMEOUT_MS))
        # The viewer's Plotly images included, not only st.image ones (the gallery's thumbnails).
        result.images, result.exceptions = counts["pictures"], counts["exceptions"]
        # The verdict, not the "does not look like a radiograph" warning that may follow it.
        alerts = page.locator("[data-testid=stAlert]").filter(has_text=upload.name).filter(
            has_text=app_harness.VERDICT_PATTERN)
        result.shown_text = (await alerts.first.inner_text(timeout=timeout_ms)).strip()
    except Exception as error:  # a timeout or a closed page is this session's failure, reported
        result.error = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    return result


async def drive_sessions(url: str, uploads: list[Upload], threshold: float,
                         timeout_s: float) -> tuple[list[SessionResult], float]:
    """Opens one browser context per upload, then all upload at once; returns results and wall time."""
    from playwright.async_api import async_playwright

    timeout_ms = int(timeout_s * 1000)
    started = time.perf_counter()
    async with async_playwright() as driver:
        browser = await app_harness.launch_chromium(driver)
        try:
            opened = await asyncio.gather(*(_open_session(browser, url, timeout_ms) for _ in uploads),
                                          return_exceptions=True)
            go = asyncio.Event()
            tasks = []
            for upload, session in zip(uploads, opened):
                if isinstance(session, BaseException):
                    failed = SessionResult(upload, threshold, error=f"page did not open: {type(session).__name__}: "
                                                                    f"{str(session).splitlines()[0][:300]}")
                    tasks.append(asyncio.sleep(0, result=failed))
                else:
                    tasks.append(_upload_and_read(session[1], upload, threshold, go, timeout_ms))
            go.set()  # every page is ready: all sessions upload at the same moment
            results = await asyncio.gather(*tasks)
        finally:
            await browser.close()
    return list(results), time.perf_counter() - started


def run_load_test(sessions: int = 20, *, timeout_s: float = 600, server_env: dict[str, str] | None = None,
                  uploads: list[Upload] | None = None) -> LoadReport:
    """Runs the whole check: expected answers from ``core``, one server, ``sessions`` browsers."""
    if uploads is None:
        uploads, source = session_uploads(sessions)
    else:
        source = "given uploads"
    uploads, threshold = with_expected_answers(uploads)
    load_at_start = os.getloadavg()[0]
    with app_harness.serve_app(flags=SERVER_FLAGS, env=server_env) as app:
        with ServerUsage(app.pid) as usage:
            results, wall_s = asyncio.run(drive_sessions(app.url, uploads, threshold, timeout_s))
        return LoadReport(results, wall_s, usage.peak_rss_mb, usage.peak_hwm_mb, usage.cpu_s,
                          (load_at_start, os.getloadavg()[0]), source, list(app.log_tail))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_test", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent browser sessions (default 20)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds each session may wait (default 600)")
    args = parser.parse_args()
    if not app_harness.CHROMIUM.exists():
        raise SystemExit(f"no Chromium at {app_harness.CHROMIUM}")
    report = run_load_test(args.sessions, timeout_s=args.timeout)
    print(report.summary())
    if report.correct != len(report.results):
        print("server log (last lines):\n" + "\n".join(report.server_log_tail[-40:]), file=sys.stderr)
    return 0 if report.correct == len(report.results) else 1


if __name__ == "__main__":
    sys.exit(main())
