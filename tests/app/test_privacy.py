"""Privacy: uploads stay in memory, and DICOM patient data is never shown, logged or written.

(a) Several uploads (PNG, JPEG, DICOM, and DICOMs whose preamble is an EPS or a TIFF header)
    through AppTest on the Classify and Batch pages, with their downloads rendered, leave no new
    or changed file: neither in the temporary directory nor in the project directory, and the
    process opens no file for writing anywhere and starts no program (an audit hook sees every
    ``open`` for writing, ``os.rename``/``os.replace``, ``tempfile.mkstemp``/``mkdtemp`` and
    every ``subprocess``/``os.exec``/``os.system`` call in the process, including TensorFlow's and
    Streamlit's Python code). Before issue 13 the colour check opened the EPS preamble with
    Pillow's EPS plugin, which copies the upload into the temporary directory and runs Ghostscript.
    tests/load/test_concurrent_sessions.py does the same around real HTTP uploads to a real server,
    which AppTest bypasses.
(b) A DICOM carrying distinctive patient, institution and physician values is uploaded to both
    pages; none of those values appears in any element (every element's protobuf, which holds
    values, labels, bodies, markdown, captions and the table's Arrow data), in any file the page
    offers (the JSON report, the CSV, the PNGs), in any log record or on stdout/stderr. The same
    for DICOMs that cannot be read (broken pixel data, a file cut short), whose error message is
    shown, and for ``python -m core.predict`` on such files.
(c) The PDF reports, made by the Batch page's button and by ``core.pdf_report`` directly from
    such DICOMs: no value in the text drawn on any page, in any stream once inflated, in the raw
    file or in its metadata (Title, Author, Creator, …), which holds nothing from the file at all.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_DIR
from pages.batch import METHOD_KEY, TABLE_KEY
from tests.app.app_pages import page_alone
from tests.app.media import download_data
from tests.app.page_text import shown
from tests.app.media import deferred_data
from tests.app.test_batch_page import PDF_LABEL
from tests.core.test_pdf_report import pdf_info, pdf_streams, pdf_text
from tests.corpus import EPS_PREAMBLE, dicom_bytes, tiff_header, with_preamble

APP = str(PROJECT_DIR / "streamlit_app.py")
BATCH = "batch"
TIMEOUT = 180  # the first run imports TensorFlow and loads the model

# Distinctive values, each unlikely to occur by chance anywhere on a page or in a log.
PATIENT_TAGS = {
    "PatientName": "Zyxwvutson^Quorraline",
    "PatientID": "PID-77413-ZQX",
    "PatientBirthDate": "19230417",
    "InstitutionName": "Qwimbleton Memorial Infirmary",
    "ReferringPhysicianName": "Vantablackwood^Oswaldine",
    "AccessionNumber": "ACC98765XQ",
    "PatientAddress": "42 Snorkelwick Lane",
    "OtherPatientIDs": "OPID-55120-KVW",
}
# Each value and each of its name components, compared case-insensitively: a page that printed
# "QUORRALINE ZYXWVUTSON" would leak as much as one that printed the raw value.
SECRETS = sorted({part.lower() for value in PATIENT_TAGS.values() for part in [value, *value.split("^")]})
# Files people write while this runs on a shared working tree (other engineers' edits); an upload
# or a report derived from one never lands in a .py or .md file.
SOURCE_SUFFIXES = (".py", ".md")
SKIPPED_DIRS = {".venv", ".git", "__pycache__", ".pytest_cache", ".cache", ".hypothesis"}  # tools' caches


# --- inputs ---------------------------------------------------------------------------------------

def _radiograph(seed: int, shape=(320, 256)) -> np.ndarray:
    """uint8 grey noise with a bright vertical 'bone' at a seed-dependent column."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(20, 100, shape).astype(np.uint8)
    column = int(rng.integers(shape[1] // 4, 3 * shape[1] // 4))
    pixels[:, column : column + 12] = 230
    return pixels


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _dicom(seed: int, *, pixel_data: bytes | None = None) -> bytes:
    """A 12-bit DX DICOM with the patient tags above, built in memory by the corpus's builder."""
    pixels = _radiograph(seed).astype(np.uint16) * 16
    data = dicom_bytes(pixels, pixel_data=pixel_data, BitsStored=12, HighBit=11, **PATIENT_TAGS)
    assert all(value.encode() in data for value in PATIENT_TAGS.values())  # the tags are really in it
    return data


def _broken_pixel_dicom() -> bytes:
    return _dicom(7, pixel_data=b"\x00\x01" * 50)  # 100 bytes where 320x256x2 are declared


def _truncated_dicom() -> bytes:
    data = _dicom(8)
    return data[: data.index(PATIENT_TAGS["InstitutionName"].encode()) + 8]  # cut inside a tag's value


# --- what the page holds --------------------------------------------------------------------------

def _page_bytes(app: AppTest) -> bytes:
    """The serialised protobuf of every element and block on the page, main area and sidebar."""
    parts = [node.proto.SerializeToString() for node in app._tree if getattr(node, "proto", None) is not None]
    assert parts, "no elements found on the page"
    return b"\n".join(parts)


def _leaks(blob: bytes | str) -> list[str]:
    text = shown((blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob).lower())
    return [secret for secret in SECRETS if secret in text]


# --- (a) uploads stay in memory -------------------------------------------------------------------

class _WriteAudit:
    """Records, while active, every attempt of this process to create or modify a file or to
    start a program."""

    active = False
    events: list[str] = []
    installed = False

    @classmethod
    def install(cls) -> None:
        if not cls.installed:  # an audit hook cannot be removed: install one, switch it on and off
            sys.addaudithook(cls._hook)
            cls.installed = True

    @classmethod
    def _hook(cls, event: str, args) -> None:
        if not cls.active:
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            writes = (mode is not None and any(flag in str(mode) for flag in "wax+")) or (
                flags is not None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
            if writes:
                cls.events.append(f"open {path} {mode or flags}")
        elif event in ("os.rename", "os.replace", "os.mkdir", "tempfile.mkstemp", "tempfile.mkdtemp",
                       "shutil.copyfile", "shutil.move"):
            cls.events.append(f"{event} {args}")
        elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                       "os.forkpty"):
            cls.events.append(f"{event} {args}")


def _snapshot(root: Path, *, skip_sources: bool = False) -> dict[str, int]:
    """``{path: mtime_ns}`` of every file under ``root``, except caches, the venv and git."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [name for name in dirs if name not in SKIPPED_DIRS]
        for name in names:
            if skip_sources and name.endswith(SOURCE_SUFFIXES):
                continue
            path = os.path.join(folder, name)
            try:
                files[path] = os.stat(path).st_mtime_ns
            except FileNotFoundError:  # removed while walking
                continue
    return files


def _differences(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted([f"new {path}" for path in after.keys() - before.keys()]
                  + [f"changed {path}" for path in before.keys() & after.keys() if before[path] != after[path]])


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch) -> Path:
    """``tempfile.gettempdir()`` pointed at an empty folder only this test uses.

    The machine's /tmp is shared with other processes (pytest's own tmp_path, other jobs), so a
    diff of it would flag their files; whatever the app puts in "the temporary directory" now
    lands here, and anything written elsewhere is caught by the audit hook.
    """
    folder = tmp_path / "tempdir"
    folder.mkdir()
    for variable in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.setenv(variable, str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    assert tempfile.gettempdir() == str(folder)
    return folder


def test_uploads_and_downloads_leave_no_file_anywhere(private_tempdir, media_files, deferred_downloads):
    classify, batch = AppTest.from_file(APP, default_timeout=TIMEOUT), page_alone(BATCH, default_timeout=TIMEOUT)
    classify.run()  # warm-up without uploads: imports, model, caches (may create library config files)
    batch.run()
    assert not classify.exception and not batch.exception
    uploads = [("knee.png", _encode(_radiograph(1), "PNG"), "image/png"),
               ("wrist.jpg", _encode(_radiograph(2), "JPEG"), "image/jpeg"),
               ("hand.dcm", _dicom(3), "application/dicom"),
               ("eps.dcm", with_preamble(_dicom(4), EPS_PREAMBLE), "application/dicom"),
               ("tiff.dcm", with_preamble(_dicom(5), tiff_header(13000, 13000, rgb=True)), "application/dicom")]

    _WriteAudit.install()
    project_before, temp_before = _snapshot(PROJECT_DIR, skip_sources=True), _snapshot(private_tempdir)
    _WriteAudit.events.clear()
    _WriteAudit.active = True
    try:
        classify.file_uploader[0].set_value(uploads).run()
        classify.selectbox[0].set_value("layercam").run()  # a second heatmap and its download
        batch.file_uploader[0].set_value(uploads).run()
        batch.session_state[TABLE_KEY] = {"selection": {"rows": [2], "columns": [], "cells": []}}  # hand.dcm
        batch.run()
        batch.selectbox(key=METHOD_KEY).set_value("layercam").run()  # its second heatmap
        pdf = deferred_data(batch, PDF_LABEL, deferred_downloads)  # the PDF, as a click makes it
        image_pdfs = [deferred_downloads[button.proto.deferred_file_id]()  # and each Classify PDF
                      for button in classify.get("download_button") if button.proto.deferred_file_id]
    finally:
        _WriteAudit.active = False
    writes = list(_WriteAudit.events)

    assert not classify.exception and not batch.exception
    assert len(classify.get("download_button")) == 3 * len(uploads)  # PNG, JSON and PDF of every upload
    assert len(image_pdfs) == len(uploads) and all(data.startswith(b"%PDF-") for data in image_pdfs)
    assert [button.label for button in batch.get("download_button")] == ["Download CSV", PDF_LABEL]
    assert pdf.startswith(b"%PDF-")
    assert len(media_files) >= 2 * len(uploads)  # PNGs and reports went to the in-memory store
    assert writes == [], f"the app tried to write files or start programs: {writes}"
    assert _differences(temp_before, _snapshot(private_tempdir)) == []
    assert _differences(project_before, _snapshot(PROJECT_DIR, skip_sources=True)) == []


# --- (b) DICOM patient data -----------------------------------------------------------------------

@pytest.fixture
def all_logs(caplog):
    """Every log record, Streamlit's too (its logger does not propagate to the root)."""
    caplog.set_level(logging.DEBUG)
    streamlit_logger = logging.getLogger("streamlit")
    streamlit_logger.addHandler(caplog.handler)
    previous_level = streamlit_logger.level
    streamlit_logger.setLevel(logging.DEBUG)
    yield caplog
    streamlit_logger.removeHandler(caplog.handler)
    streamlit_logger.setLevel(previous_level)


def _assert_no_leak_in_logs_or_output(caplog, capfd, recwarn) -> None:
    """Nothing in log records, on stdout/stderr (file descriptors 1 and 2) or in warnings."""
    logs = "\n".join(f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records)
    captured = capfd.readouterr()
    warned = "\n".join(str(warning.message) for warning in recwarn)
    assert _leaks(logs) == [], "patient data in the logs"
    assert _leaks(captured.out) == [] and _leaks(captured.err) == [], "patient data on stdout/stderr"
    assert _leaks(warned) == [], "patient data in a warning"


def test_dicom_patient_data_is_never_shown_on_classify(all_logs, capfd, recwarn, media_files, deferred_downloads):
    name = "visible_probe_study.dcm"  # the file name IS shown: proof that the search sees the page
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].set_value([(name, _dicom(11), "application/dicom")]).run()
    assert not app.exception
    labels = [button.label for button in app.get("download_button")]
    assert "Report (JSON)" in labels, labels

    page = _page_bytes(app)
    assert "visible_probe_study" in shown(page.decode("utf-8", "replace"))
    assert _leaks(page) == []
    report = download_data(app, "Report (JSON)", media_files)
    assert json.loads(report)["file_name"] == name
    assert _leaks(report) == []
    assert all(_leaks(data) == [] for data in media_files.values())
    for button in app.get("download_button"):  # the page's PDF report, whether made on click or at once
        if "PDF" in button.label:
            pdf = (deferred_data(app, button.label, deferred_downloads) if button.proto.deferred_file_id
                   else download_data(app, button.label, media_files))
            _assert_pdf_holds_no_patient_data(pdf, [name])
    _assert_no_leak_in_logs_or_output(all_logs, capfd, recwarn)


def test_dicom_patient_data_is_never_shown_on_batch(all_logs, capfd, recwarn, media_files):
    names = ["probe_a.dcm", "probe_broken.dcm", "probe_cut.dcm"]
    app = page_alone(BATCH, default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].set_value([(names[0], _dicom(12), "application/dicom"),
                                    (names[1], _broken_pixel_dicom(), "application/dicom"),
                                    (names[2], _truncated_dicom(), "application/dicom")]).run()
    assert not app.exception

    table = app.dataframe[0].value
    assert list(table["file"]) == names
    verdicts = list(table["verdict"])
    assert not verdicts[0].startswith("unreadable") and all(v.startswith("unreadable") for v in verdicts[1:])
    page = _page_bytes(app)
    assert b"probe_broken" in page and _leaks(page) == []
    csv_text = download_data(app, "Download CSV", media_files).decode()
    assert all(name in csv_text for name in names) and "unreadable" in csv_text
    assert _leaks(csv_text) == []
    assert all(_leaks(data) == [] for data in media_files.values())
    _assert_no_leak_in_logs_or_output(all_logs, capfd, recwarn)


@pytest.mark.parametrize("broken", [_broken_pixel_dicom, _truncated_dicom], ids=["broken-pixels", "cut-short"])
def test_unreadable_dicom_error_message_has_no_patient_data(broken, all_logs, capfd, recwarn):
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].set_value([("probe.dcm", broken(), "application/dicom")]).run()
    assert not app.exception
    messages = [shown(element.value) for element in app.error]
    assert any(message.startswith("Could not read probe.dcm:") and "DICOM" in message for message in messages), messages
    assert _leaks("\n".join(messages)) == [] and _leaks(_page_bytes(app)) == []
    _assert_no_leak_in_logs_or_output(all_logs, capfd, recwarn)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_predict_cli_prints_no_patient_data(tmp_path, capfd, recwarn, all_logs, as_json):
    from core import predict

    good, cut, broken = tmp_path / "study1.dcm", tmp_path / "study2.dcm", tmp_path / "study3.dcm"
    good.write_bytes(_dicom(21))
    cut.write_bytes(_truncated_dicom())
    broken.write_bytes(_broken_pixel_dicom())
    status = predict.main([str(good), str(cut), str(broken), *(["--json"] if as_json else [])])
    captured = capfd.readouterr()
    assert status == 1  # two of the three could not be read
    output = captured.out + captured.err
    assert "study1.dcm" in output and "study2.dcm" in output and "study3.dcm" in output
    assert "P(fractured)" in output or "probability_fractured" in output
    assert _leaks(output) == []
    _assert_no_leak_in_logs_or_output(all_logs, capfd, recwarn)


# --- (c) the PDF reports --------------------------------------------------------------------------

def _assert_pdf_holds_no_patient_data(pdf: bytes, names: list[str]) -> None:
    """No patient value anywhere in ``pdf``; each of ``names`` is printed on a page, which proves
    that the search reads the text the pages draw (matplotlib splits it into kerned runs)."""
    text = pdf_text(pdf)
    assert all(name in text for name in names), "the file names are printed, so the text is read"
    assert _leaks(text) == [], "patient data printed on a page"
    assert _leaks(b"\n".join(pdf_streams(pdf))) == [], "patient data in a stream"
    assert _leaks(pdf) == [], "patient data in the file"
    info = pdf_info(pdf)
    assert {"Title", "Author", "Creator"} <= info.keys()
    assert _leaks(" ".join(info.values())) == [], "patient data in the PDF's metadata"
    assert not any(Path(name).stem in value for name in names for value in info.values()), info


def test_dicom_patient_data_never_reaches_the_batch_pdf(all_logs, capfd, recwarn, deferred_downloads):
    names = ["probe_a.dcm", "probe_b.dcm", "probe_broken.dcm", "probe_cut.dcm"]
    app = page_alone(BATCH, default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].set_value([(names[0], _dicom(31), "application/dicom"),
                                    (names[1], with_preamble(_dicom(32), EPS_PREAMBLE), "application/dicom"),
                                    (names[2], _broken_pixel_dicom(), "application/dicom"),
                                    (names[3], _truncated_dicom(), "application/dicom")]).run()
    assert not app.exception
    assert list(app.dataframe[0].value["file"]) == names

    pdf = deferred_data(app, PDF_LABEL, deferred_downloads)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert "Unreadable: 2" in text and "Images 1 to 2 of 2" in text  # both readable DICOMs drawn
    _assert_pdf_holds_no_patient_data(pdf, names)
    _assert_no_leak_in_logs_or_output(all_logs, capfd, recwarn)


def test_dicom_patient_data_never_reaches_a_pdf_made_through_core(all_logs, capfd, recwarn):
    from datetime import datetime, timezone

    from core.classifier import FractureClassifier
    from core.overlay import overlay_on_original
    from core.pdf_report import (BatchReport, ReportContext, UnreadableFile, batch_image, batch_report_pdf,
                                 image_report, image_report_pdf)
    from core.triage import TriageBands

    classifier = FractureClassifier.load()
    thresholds = classifier.thresholds
    context = ReportContext(thresholds["balanced"], "Balanced", "On the held-out test split: …",
                            TriageBands.from_thresholds(thresholds), classifier.version, datetime.now(timezone.utc))
    result = classifier.classify(_dicom(41), heatmap="gradcam").for_display()
    overlay = overlay_on_original(result.image, result.heatmap, classifier.preprocess_config,
                                  source_shape=result.source_shape)
    one = image_report_pdf(image_report("probe_core.dcm", result, overlay, context))
    _assert_pdf_holds_no_patient_data(one, ["probe_core.dcm"])
    batch = batch_report_pdf(BatchReport((batch_image("probe_core.dcm", result, overlay, context),),
                                         (UnreadableFile("probe_gone.dcm", "the DICOM file is cut short"),), context))
    _assert_pdf_holds_no_patient_data(batch, ["probe_core.dcm", "probe_gone.dcm"])
    _assert_no_leak_in_logs_or_output(all_logs, capfd, recwarn)
