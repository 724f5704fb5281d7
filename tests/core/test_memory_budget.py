"""Memory per upload: the worst generated files, each answered by ``python -m core.predict`` in a
subprocess of its own, with the peak RSS of that process at most 1.5 GB (issue 13, defect 4).

The files are small on disk (at most the 50 MB upload limit) and built in the test's temporary
directory; what makes them hostile is what they decode or inflate to. The peak is the child's
own high-water mark (``VmHWM`` of its memory map, read by the child as it exits), so neither other
processes nor the test process count: ``ru_maxrss`` would not do, because Linux carries the
parent's peak over into a child at ``exec``, and inside a full test run the parent holds ~2 GB.

The table in docs/robustness.md comes from the same cases:

    .venv/bin/python -m tests.core.test_memory_budget /tmp/hostile          # every case, about 3 min
    .venv/bin/python -m tests.core.test_memory_budget /tmp/hostile rgba-png-60mp deflate-bomb-2gb
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from core.config import PROJECT_DIR
from tests import corpus

RSS_LIMIT = 1_500_000_000  # bytes: the 1.5 GB for the CLI process
CLI_TIMEOUT = 180  # seconds; a hang is a failure, not a stuck CI job
SIDE = 7745  # 7745 × 7745 = 59,985,025 pixels: the largest square under the 60 MP limit


@dataclass(frozen=True)
class Large:
    name: str
    what: str  # what is sent, in words
    make: Callable[[Path], Path]  # writes the file (or special file) into a folder, returns its path
    outcome: str  # "reads" or a piece of the error message


def _file(name: str, build: Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(build())
        return path
    return make


def _encoded(mode: str, size: tuple[int, int], colour, fmt: str, **options) -> Callable[[], bytes]:
    def build() -> bytes:
        buffer = io.BytesIO()
        Image.new(mode, size, colour).save(buffer, fmt, **options)
        return buffer.getvalue()
    return build


def _native_dicom(side: int, bits: int) -> Callable[[], bytes]:
    def build() -> bytes:
        dtype = np.uint8 if bits == 8 else np.uint16
        pixels = (np.arange(side * side, dtype=np.uint32) % 251).astype(dtype).tobytes()
        return corpus.dicom_bytes(pixel_data=pixels, Rows=side, Columns=side, BitsAllocated=bits,
                                  BitsStored=bits, HighBit=bits - 1)
    return build


def _fifo(folder: Path) -> Path:
    path = folder / "scan.png"
    os.mkfifo(path)
    return path


def _dev_zero(folder: Path) -> Path:
    path = folder / "zero.png"
    path.symlink_to("/dev/zero")
    return path


def _preamble_dicom(preamble: bytes) -> Callable[[], bytes]:
    return lambda: corpus.with_preamble(corpus.dicom_bytes(corpus.bright_left(64, 64)), preamble)


CASES = [
    Large("normal-radiograph", "a 2,000 × 2,500 16-bit grey PNG: a normal radiograph, for scale",
          _file("normal.png", lambda: corpus.encode(Image.fromarray(
              (np.indices((2500, 2000)).sum(0) % 4096).astype(np.uint16) * 16), "PNG")), "reads"),
    Large("rgba-png-60mp", f"{SIDE}×{SIDE} RGBA PNG, one colour (the issue's 233 KB file)",
          _file("rgba.png", lambda: corpus.constant_png(SIDE, SIDE, b"dddd", colour_type=6)), "reads"),
    Large("16bit-png-60mp", f"{SIDE}×{SIDE} 16-bit grey PNG",
          _file("deep.png", lambda: corpus.constant_png(SIDE, SIDE, b"\x03\xe8", colour_type=0, bit_depth=16)),
          "reads"),
    Large("palette-alpha-png-60mp", f"{SIDE}×{SIDE} palette PNG with a transparent entry",
          _file("palette.png", lambda: corpus.constant_png(SIDE, SIDE, b"\x01", colour_type=3,
                                                           palette=b"\xff\xff\xff\x80\x80\x80", transparency=b"\x00")),
          "reads"),
    Large("grey-png-60mp", f"{SIDE}×{SIDE} 8-bit grey PNG",
          _file("grey.png", lambda: corpus.constant_png(SIDE, SIDE, b"\x80", colour_type=0)), "reads"),
    Large("float-tiff-60mp", f"{SIDE}×{SIDE} 32-bit float TIFF, deflate-compressed",
          _file("float.tif", _encoded("F", (SIDE, SIDE), 0.5, "TIFF", compression="tiff_adobe_deflate")), "reads"),
    Large("rgb-jpeg-60mp", f"{SIDE}×{SIDE} RGB JPEG",
          _file("photo.jpg", _encoded("RGB", (SIDE, SIDE), (90, 120, 150), "JPEG")), "reads"),
    Large("webp-15mp", "4472×3354 lossless RGBA WebP (15.0 MP, the WebP limit)",
          _file("big.webp", _encoded("RGBA", (4472, 3354), (90, 90, 90, 255), "WEBP", lossless=True)), "reads"),
    Large("webp-60mp", "16383×3661 lossless RGBA WebP (WebP's widest)",
          _file("wide.webp", _encoded("RGBA", (16383, 3661), (90, 90, 90, 255), "WEBP", lossless=True)),
          "the limit for WebP is 15.0 MP"),
    Large("dicom-8bit-50mb", "7,070 × 7,070 8-bit native DICOM: 50 MB, the largest uncompressed upload",
          _file("big8.dcm", _native_dicom(7070, 8)), "reads"),
    Large("dicom-16bit-50mb", "5,000 × 5,000 16-bit native DICOM (50 MB)", _file("big16.dcm", _native_dicom(5000, 16)),
          "reads"),
    Large("dicom-rle-60mp", f"{SIDE}×{SIDE} 16-bit RLE DICOM (1.9 MB; 120 MB decoded, the most a frame may hold)",
          _file("rle.dcm", lambda: corpus.rle_dicom(SIDE, SIDE)), "reads"),
    Large("dicom-jpeg-60mp", f"{SIDE}×{SIDE} JPEG Baseline DICOM",
          _file("jpeg.dcm", lambda: corpus.jpeg_in_dicom((SIDE, SIDE), SIDE, SIDE)), "reads"),
    Large("deflate-bomb-2gb", "2.1 MB deflated DICOM whose dataset inflates to 2 GB",
          _file("deflate.dcm", lambda: corpus.deflate_bomb_dicom(2048 * corpus.MB)), "inflates to more than 50.0 MB"),
    Large("rle-bomb", "RLE DICOM, 64×64, whose one 50 MB segment decodes to 3.2 GB",
          _file("rle-bomb.dcm", lambda: corpus.rle_bomb_dicom(pairs=25 * corpus.MB - 1024)),
          "decodes to more than Rows × Columns"),
    Large("jpeg-in-dicom-144mp", "JPEG DICOM, Rows × Columns 64×64, whose codestream says 12000×12000",
          _file("jpeg-claims.dcm", lambda: corpus.encapsulated_dicom(corpus.jpeg_declaring(12000, 12000),
                                                                      "JPEGBaseline8Bit", 64, 64)),
          "does not match its header"),
    Large("j2k-in-dicom-169mp", "JPEG 2000 DICOM, Rows × Columns 48×64, whose SIZ marker says 13000×13000",
          _file("j2k-claims.dcm", lambda: corpus.j2k_in_dicom((64, 48), 48, 64, declare=(13000, 13000))),
          "does not match its header"),
    Large("eps-preamble", "64×64 DICOM whose preamble is an EPS header with `{} loop`",
          _file("eps.dcm", _preamble_dicom(corpus.EPS_PREAMBLE)), "reads"),
    Large("tiff-preamble-169mp", "64×64 DICOM whose preamble is a TIFF header declaring 13000×13000 RGB",
          _file("tiff.dcm", _preamble_dicom(corpus.tiff_header(13000, 13000, rgb=True))), "reads"),
    Large("fifo", "a FIFO (named pipe) with no writer", _fifo, "a FIFO (named pipe), not a regular file"),
    Large("dev-zero", "a symlink to /dev/zero", _dev_zero, "a character device, not a regular file"),
    Large("float64-tiff", "4×5 TIFF of 64-bit floats", _file("double.tif", corpus.float64_tiff),
          "64-bit floating-point samples, which are not supported"),
]
BY_NAME = {case.name: case for case in CASES}


@dataclass(frozen=True)
class Measured:
    peak_rss: int  # bytes
    seconds: float
    status: int
    output: str  # stdout: the --json line


# Runs the CLI as ``python -m core.predict`` would, and reports the peak resident memory of this
# process's own memory map on stderr as it exits (after main() returns or exits).
_REPORTING_CLI = """
import atexit, re, runpy, sys

def report_peak():
    with open("/proc/self/status") as status:
        kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))
    print(f"peak-rss-kb {kb}", file=sys.stderr, flush=True)

atexit.register(report_peak)
runpy.run_module("core.predict", run_name="__main__", alter_sys=True)
"""


def run_cli(path: Path, heatmap_dir: Path | None = None, timeout: float = CLI_TIMEOUT) -> Measured:
    """``python -m core.predict --json [--heatmap-dir D] PATH`` in a subprocess of its own, with
    the peak resident memory of that process's own memory map (its ``VmHWM`` at exit)."""
    command = [sys.executable, "-c", _REPORTING_CLI, "--json", str(path)]
    if heatmap_dir is not None:
        command += ["--heatmap-dir", str(heatmap_dir)]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors, tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=out, stderr=errors, env=environment)
        while True:
            pid, status, _ = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                child.send_signal(signal.SIGKILL)
                os.wait4(child.pid, 0)
                child.returncode = -9
                raise AssertionError(f"{path.name}: no answer within {timeout} s")
            time.sleep(0.05)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        seconds = time.perf_counter() - started
        out.seek(0)
        output = out.read().decode("utf-8", "replace")
        errors.seek(0)
        reported = re.findall(rb"^peak-rss-kb (\d+)$", errors.read(), flags=re.MULTILINE)
    assert reported, f"{path.name}: the CLI did not report its peak memory (exit status {child.returncode})"
    return Measured(int(reported[-1]) * 1024, seconds, child.returncode, output)


def check_outcome(case: Large, measured: Measured) -> None:
    record = json.loads(measured.output.strip().splitlines()[-1])
    if case.outcome == "reads":
        assert measured.status == 0 and "probability_fractured" in record, (case.name, record)
    else:
        assert measured.status == 1 and case.outcome in record.get("error", ""), (case.name, record)


# The worst cases of the table in docs/robustness.md (the highest peaks, readable and refused),
# each with --heatmap-dir, which draws the overlay at the size of the image as read.
WORST = ["rgba-png-60mp", "float-tiff-60mp", "dicom-rle-60mp", "dicom-16bit-50mb", "deflate-bomb-2gb", "rle-bomb"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.mark.parametrize("name", WORST)
def test_the_worst_files_are_answered_within_1_5_gb(folder, name):
    case = BY_NAME[name]
    path = case.make(folder)
    measured = run_cli(path, heatmap_dir=folder / f"overlays-{name}")
    check_outcome(case, measured)
    assert measured.peak_rss <= RSS_LIMIT, f"{name}: peak RSS {measured.peak_rss / 1e9:.2f} GB"


def _table(folder: Path, names: list[str]) -> str:
    lines = ["| case | what is sent | size on disk | outcome | peak RSS | time "
             "| peak RSS with `--heatmap-dir` | time |",
             "|---|---|---|---|---|---|---|---|"]
    for name in names:
        case = BY_NAME[name]
        path = case.make(folder)
        size = f"{path.stat().st_size:,} B" if path.is_file() else "–"
        plain = run_cli(path)
        check_outcome(case, plain)
        record = json.loads(plain.output.strip().splitlines()[-1])
        outcome = "read" if "error" not in record else f"refused: “{record['error']}”"
        cells = [f"`{name}`", case.what, size, outcome,
                 f"{plain.peak_rss / 2**20:,.0f} MiB", f"{plain.seconds:.1f} s"]
        if case.outcome == "reads":
            overlay = run_cli(path, heatmap_dir=folder / f"overlays-{name}")
            cells += [f"{overlay.peak_rss / 2**20:,.0f} MiB", f"{overlay.seconds:.1f} s"]
        else:
            cells += ["–", "–"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
        if path.is_file() and not path.is_symlink():
            path.unlink()  # the 50 MB ones would add up
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=False)
    print(_table(target, sys.argv[2:] or [case.name for case in CASES]))
