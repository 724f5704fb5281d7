"""core.pdf_report: what the one-image and batch PDFs say, how they are built, and how fast.

matplotlib draws each text as one run of characters with kerning numbers between them
("[ (X) 49.6 (-) -0.27 (r) … ] TJ"), so a raw byte search would not find a word even where it is
printed: :func:`pdf_text` joins each run back into the string that was drawn.
"""

from __future__ import annotations

import re
import threading
import zlib
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest

from core import artifacts
from core.classifier import ImageResult
from core.metrics import OperatingPoint
from core.pdf_report import (DISCLAIMER, PDF_METADATA, BatchImage, BatchReport, ImageReport, ReportContext,
                             UnreadableFile, batch_report_pdf, image_report, image_report_pdf, test_cost_sentence,
                             threshold_label)
from core.radiograph_check import RadiographCheck
from core.triage import TriageBands

CREATED = datetime(2026, 11, 30, 9, 15, tzinfo=timezone.utc)
BANDS = TriageBands(0.09, 0.5)
COST = "On the held-out test split: sensitivity 77.5%, specificity 80.0% (catches 86 of 111 fractures)."


# --- reading a PDF back -----------------------------------------------------------------------------

_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
_TEXT_RUN = re.compile(rb"\[(.*?)\]\s*TJ|(\((?:\\.|[^\\()])*\))\s*Tj", re.S)
_LITERAL = re.compile(rb"\((?:\\.|[^\\()])*\)", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"(": b"(", b")": b")", b"\\": b"\\"}


def pdf_streams(pdf: bytes) -> list[bytes]:
    """Every stream of the file, inflated where it is Flate-compressed."""
    streams = []
    for match in _STREAM.finditer(pdf):
        try:
            streams.append(zlib.decompress(match.group(1)))
        except zlib.error:
            streams.append(match.group(1))
    return streams


def _literal(token: bytes) -> str:
    body = token[1:-1]
    unescaped = re.sub(rb"\\(.)", lambda escape: _ESCAPES.get(escape.group(1), escape.group(1)), body, flags=re.S)
    return unescaped.decode("latin-1")


def pdf_text(pdf: bytes) -> str:
    """The text the pages draw, one drawn string per line."""
    runs = []
    for stream in pdf_streams(pdf):
        for array, single in _TEXT_RUN.findall(stream):
            runs.append("".join(_literal(token) for token in _LITERAL.findall(array or single)))
    return "\n".join(runs)


def pdf_info(pdf: bytes) -> dict[str, str]:
    """The document information dictionary (Title, Author, Creator, …) as text."""
    info = {}
    for key, value in re.findall(rb"/(Title|Author|Subject|Keywords|Creator|Producer|CreationDate|ModDate)\s*"
                                 rb"(\((?:\\.|[^\\()])*\))", pdf):
        info[key.decode()] = _literal(value)
    return info


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))


def embedded_image_sizes(pdf: bytes) -> list[tuple[int, int]]:
    """(width, height) of each image XObject."""
    return [(int(width), int(height)) for width, height in
            re.findall(rb"/Subtype\s*/Image[^>]*?/Width\s+(\d+)\s*/Height\s+(\d+)", pdf, re.S)]


# --- reports to draw ------------------------------------------------------------------------------

def _xray(shape=(320, 256), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _report(**changes) -> ImageReport:
    xray = _xray()
    fields = dict(file_name="knee_left.png", xray=xray, overlay=np.stack([xray] * 3, axis=-1), colormap="jet",
                  heatmap_label="Grad-CAM", probability_fractured=0.734, threshold=0.504,
                  threshold_label="Few false alarms",
                  band="fracture", decision="fractured", test_cost=COST, model_version="residual-192px-test",
                  radiograph_notice="", created=CREATED)
    return ImageReport(**{**fields, **changes})


def _context(threshold=0.2) -> ReportContext:
    return ReportContext(threshold, "custom", COST, BANDS, "residual-192px-test", CREATED)


def _batch_image(name: str, probability: float, context: ReportContext, looks=True, like=True) -> BatchImage:
    band = BANDS.band(probability)
    decision = "fractured" if probability >= context.threshold else "not_fractured"
    return BatchImage(_report(file_name=name, probability_fractured=probability, threshold=context.threshold,
                              threshold_label=context.threshold_label, band=band, decision=decision), looks, like)


# --- one image ------------------------------------------------------------------------------------

def test_image_report_states_band_verdict_probability_threshold_cost_model_date_and_disclaimer():
    text = pdf_text(image_report_pdf(_report()))
    for expected in ("knee_left.png", "Triage band: Fracture", "Verdict at the threshold: Fracture suspected",
                     # "≥" is outside the font's Latin-1 encoding, so it is drawn apart from the text runs
                     "P(fractured) = 0.734 ", " threshold 0.504 (Few false alarms)",
                     "sensitivity 77.5%, specificity 80.0%", "Model residual-192px-test", "2026-11-30 09:15 UTC",
                     DISCLAIMER, "X-ray", "Grad-CAM for 'fractured'", "not a probability"):
        assert expected in text, expected


def test_image_report_is_one_a4_page_with_both_pictures_at_their_own_size_and_a_colour_bar():
    pdf = image_report_pdf(_report())
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert page_count(pdf) == 1
    assert b"/MediaBox [ 0 0 595.44 841.68 ]" in pdf  # A4 in points
    sizes = embedded_image_sizes(pdf)
    assert sizes.count((256, 320)) == 2  # the X-ray and the overlay, not resampled
    assert len(sizes) == 3  # and the colour bar's gradient


def test_a_radiograph_notice_is_printed_when_there_is_one():
    notice = "This does not look like a radiograph (it is a colour image; radiographs are grey)."
    assert "This does not look like a radiograph" in pdf_text(image_report_pdf(_report(radiograph_notice=notice)))
    assert "radiograph" not in pdf_text(image_report_pdf(_report()))


def test_the_same_report_gives_the_same_bytes():
    assert image_report_pdf(_report()) == image_report_pdf(_report())


def test_pdf_metadata_is_fixed_text_and_the_report_date_never_the_file_name():
    pdf = image_report_pdf(_report(file_name="Smith^John_knee.dcm"))
    info = pdf_info(pdf)
    assert {key: info[key] for key in ("Title", "Author", "Creator", "Subject")} == {
        key: PDF_METADATA[key] for key in ("Title", "Author", "Creator", "Subject")}
    assert info["CreationDate"] == "D:20261130091500Z"
    assert not any("Smith" in value or "knee" in value for value in info.values())
    assert "Smith^John_knee.dcm" in pdf_text(pdf)  # the name is printed on the page, as given


def test_a_probability_just_under_the_threshold_is_never_shown_as_reaching_it():
    pdf = image_report_pdf(_report(probability_fractured=0.99996, threshold=0.99999, band="fracture",
                                   decision="not_fractured"))
    text = pdf_text(pdf)
    assert "No fracture detected" in text
    assert "P(fractured) = 0.99996 < threshold 0.99999" in text
    assert "1.000" not in text


@pytest.mark.parametrize("name", ["$x^2$_(left).png", "a\\b (1).png", "ünïcødé.dcm", "100%_{sure}.png"])
def test_a_file_name_is_printed_as_typed_never_as_markup(name):
    assert f"File: {name}" in pdf_text(image_report_pdf(_report(file_name=name)))


def test_control_characters_and_very_long_names_stay_on_one_line():
    text = pdf_text(image_report_pdf(_report(file_name="evil\nname\r.png")))
    assert "File: evil?name?.png" in text
    long_name = "x" * 300 + ".png"
    shown = next(line for line in pdf_text(image_report_pdf(_report(file_name=long_name))).splitlines()
                 if line.startswith("File: "))
    assert "..." in shown and shown.endswith(".png") and len(shown) < 100


@pytest.mark.parametrize("changes, message", [
    ({"decision": "not_fractured"}, "contradicts"),
    ({"band": "maybe"}, "unknown band"),
    ({"probability_fractured": 1.5}, "in \\[0, 1\\]"),
    ({"xray": np.zeros((4, 4), np.float32)}, "xray must be a non-empty uint8"),
    ({"overlay": np.zeros((4, 4), np.uint8)}, "overlay must be a non-empty uint8 array \\(H, W, 3\\)"),
    ({"overlay": np.zeros((0, 4, 3), np.uint8)}, "overlay must be a non-empty"),
])
def test_a_report_that_contradicts_itself_or_has_no_pixels_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        _report(**changes)


def test_image_report_from_a_result_takes_band_decision_and_notice_from_the_result_and_context():
    image = np.linspace(0.0, 1.0, 64 * 48, dtype=np.float32).reshape(64, 48)
    colour = RadiographCheck(colourfulness=40.0, distance=None, threshold=None)
    result = ImageResult(0.3, colour, np.zeros((8, 8, 1), np.uint8), image, (640, 480))
    overlay = np.zeros((64, 48, 3), np.uint8)
    report = image_report("scan.dcm", result, overlay, _context(threshold=0.2))
    assert (report.band, report.decision, report.threshold_label) == ("doubt", "fractured", "custom")
    assert report.radiograph_notice == colour.notice() != ""
    assert report.xray.dtype == np.uint8 and report.xray.shape == (64, 48)
    assert report.xray[0, 0] == 0 and report.xray[-1, -1] == 255


def test_threshold_label_names_the_preset_at_exactly_its_value_else_custom():
    thresholds = artifacts.load_thresholds()
    assert threshold_label(thresholds, thresholds["specific"]) == "Few false alarms"
    assert threshold_label(thresholds, thresholds["screening"]) == "Catch almost every fracture"
    assert threshold_label(thresholds, round(thresholds["specific"], 3)) == "custom"


def test_the_cost_sentence_gives_sensitivity_specificity_and_counts():
    point = OperatingPoint.from_counts(0.3, tp=86, fp=101, tn=405, fn=25)  # sensitivity 77.5%, specificity 80.0%
    assert test_cost_sentence(point) == ("On the held-out test split: sensitivity 77.5%, specificity 80.0% "
                                         "(catches 86 of 111 fractures; 101 false alarms in 506 normals).")


# --- a batch ----------------------------------------------------------------------------------------

def _batch(probabilities, unreadable=(), threshold=0.2, **image_flags) -> BatchReport:
    context = _context(threshold)
    images = tuple(_batch_image(f"img_{index:02d}.png", probability, context, **image_flags)
                   for index, probability in enumerate(probabilities))
    return BatchReport(images, tuple(UnreadableFile(name, reason) for name, reason in unreadable), context)


def test_batch_report_has_a_summary_a_table_and_the_images_three_to_a_page():
    batch = _batch([0.95, 0.6, 0.3, 0.1, 0.01], unreadable=[("bad.jpg", "expected an image file; got a ZIP archive"),
                                                            ("cut.dcm", "the DICOM file is cut short")])
    pdf = batch_report_pdf(batch)
    assert page_count(pdf) == 1 + 1 + 2  # summary, table, images 1-3 and 4-5
    text = pdf_text(pdf)
    for expected in ("Fracture report: batch of 7 files", "Threshold 0.200 (custom): 3 of 5 readable files flagged",
                     "doubt from 0.090, fracture from 0.500", "Fracture: 2", "Doubt: 2", "No fracture: 1",
                     "Unreadable: 2", "bad.jpg: expected an image file; got a ZIP archive",
                     "cut.dcm: the DICOM file is cut short", "Every file, in upload order",
                     "Images 1 to 3 of 5", "Images 4 to 5 of 5", DISCLAIMER):
        assert expected in text, expected
    lines = text.splitlines()
    table = lines[lines.index("Looks like an X-ray") + 1:]
    assert [line for line in table if line.startswith(("img_", "bad", "cut"))][:7] == [
        "img_00.png", "img_01.png", "img_02.png", "img_03.png", "img_04.png", "bad.jpg", "cut.dcm"]  # upload order


def test_batch_table_says_which_files_do_not_look_like_x_rays():
    text = pdf_text(batch_report_pdf(_batch([0.5], looks=False, like=True)))
    assert "1 do not look like radiographs: their verdicts are meaningless." in text
    text = pdf_text(batch_report_pdf(_batch([0.5], looks=True, like=False)))
    assert "yes, unlike training" in text and "1 are X-rays unlike the training images" in text


def test_a_faded_heatmap_is_said_to_be_faded():
    batch = _batch([0.1, 0.9])
    faded = replace(batch, images=(replace(batch.images[0], heatmap_faded=True), batch.images[1]))
    assert pdf_text(batch_report_pdf(faded)).count("Heatmap faded: not flagged") == 1
    assert "Heatmap faded" not in pdf_text(batch_report_pdf(batch))


def test_a_long_batch_table_continues_on_further_pages():
    unreadable = [(f"file_{index:03d}.png", "not an image") for index in range(85)]
    pdf = batch_report_pdf(_batch([], unreadable=unreadable))
    assert page_count(pdf) == 1 + 3  # 40 rows a page; no image pages without readable images
    text = pdf_text(pdf)
    assert all(f"file_{index:03d}.png" in text for index in range(85))
    assert "... and" in text  # the summary lists what fits and points to the table


def test_batch_pages_embed_smaller_copies_of_the_pictures():
    batch = _batch([0.9])
    big = replace(batch.images[0], report=replace(batch.images[0].report, xray=_xray((1600, 1200)),
                                                  overlay=np.zeros((1600, 1200, 3), np.uint8)))
    sizes = embedded_image_sizes(batch_report_pdf(replace(batch, images=(big,))))
    assert (288, 384) in sizes and max(max(size) for size in sizes) <= 384


def test_reports_drawn_at_once_on_two_threads_are_the_reports_drawn_one_by_one():
    reports = [_report(file_name=f"thread_{index}.png") for index in range(2)]
    expected = [image_report_pdf(report) for report in reports]
    results = [None, None]

    def draw(index):
        results[index] = image_report_pdf(reports[index])

    threads = [threading.Thread(target=draw, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected


def test_display_sized_reports_of_one_image_and_of_twenty_are_whole_pdfs():
    # Display-sized pictures as the app passes them (800 px long side), with real-looking
    # structure: noise would not compress and would measure the worst case, not the usual one.
    rows, columns = np.mgrid[0:800, 0:640]
    xray = ((np.sin(rows / 37.0) * np.cos(columns / 23.0) + 1) * 127).astype(np.uint8)
    overlay = np.stack([xray, xray[::-1], xray[:, ::-1]], axis=-1)
    report = _report(xray=xray, overlay=overlay)
    one = image_report_pdf(report)
    context = _context()
    batch = BatchReport(tuple(BatchImage(replace(report, threshold=0.2, threshold_label="custom"), True, True)
                              for _ in range(20)), (), context)
    twenty = batch_report_pdf(batch)
    # Their speed (about 0.2 s and 2-4 s on 2 cores) is bench's to measure, not a test's to time.
    for pdf in (one, twenty):
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(twenty) > len(one)
