"""PDF reports, one per image and one per batch, drawn with matplotlib's PDF backend.

A report holds what a reader needs to judge a verdict away from the app: the X-ray, its heatmap
with a colour bar, the triage band, the verdict at the session's threshold, P(fractured), what
that threshold costs on the held-out test split, the model version and the date.

Privacy: a report is drawn only from the fields of :class:`ImageReport`, pixels and the file
name given, never from the file itself, so no DICOM tag (patient, institution, physician) can
reach it. The PDF's own metadata is fixed text and the report's date: neither the file name
nor anything read from the file goes there.
"""

from __future__ import annotations

import io
import textwrap
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import numpy as np

from core.reports import VERDICT_TEXT
from core.heatmaps import DEFAULT_METHOD, METHODS
from core.heldout import describe_costs, percent
from core.metrics import OperatingPoint
from core.overlay import fit_for_display
from core.thresholds import FRACTURED_DECISION, PRESETS, OperatingThresholds, decide
from core.triage import BAND_COLOURS, BAND_MEANING, BAND_TEXT, BANDS, TriageBands, shown_comparison, shown_decimals

if TYPE_CHECKING:  # only for annotations: reading a report needs no TensorFlow
    from core.classifier import ImageResult

DISCLAIMER = "Research demo -- not a medical device. Do not use for diagnosis."
CUSTOM_THRESHOLD = "custom"
PDF_METADATA = {"Title": "Bone fracture detection report", "Author": "Bone Fracture Detection (research demo)",
                "Subject": DISCLAIMER, "Creator": "Bone Fracture Detection"}
A4_INCHES = (8.27, 11.69)
TABLE_ROWS_PER_PAGE = 40
GRID_ROWS_PER_PAGE = 3
# Long side of the pictures of a batch's image pages: about 150 dpi across their 2.6 in, and a
# fifth of the pixels of an 800 px display copy, whose compression is most of a PDF's time (a
# batch of 20 in a few seconds). A one-image report embeds its pictures at the size given.
GRID_IMAGE_SIDE = 384
NOTICE_COLOUR = "#b26a00"
# No ligatures: "fi" drawn as one glyph would leave the PDF's text without the letters f and i,
# unsearchable and uncopyable.
PLAIN_LETTERS = ("-liga", "-clig", "-dlig")
# matplotlib's font cache and FreeType objects are shared by every thread of the process, and
# the app serves many sessions from one process: one report is drawn at a time.
_DRAWING = threading.Lock()


@dataclass(frozen=True)
class ImageReport:
    """Everything one image's report shows; nothing else reaches the PDF."""

    file_name: str
    xray: np.ndarray  # uint8 (H, W) or (H, W, 3)
    overlay: np.ndarray  # uint8 (H, W, 3): the heatmap blended over the X-ray
    colormap: str  # the overlay's matplotlib colormap; the PDF draws its colour bar
    heatmap_label: str  # e.g. "Grad-CAM"
    probability_fractured: float
    threshold: float
    threshold_label: str  # a preset's label, or "custom"
    band: str  # a core.triage band
    decision: str  # "fractured" or "not_fractured"
    test_cost: str  # the threshold's sensitivity and specificity on the test split, as a sentence
    model_version: str
    radiograph_notice: str  # "" or RadiographCheck.notice()
    created: datetime

    def __post_init__(self):
        _check_pixels("xray", self.xray, allow_grey=True)
        _check_pixels("overlay", self.overlay, allow_grey=False)
        if not 0.0 <= self.probability_fractured <= 1.0 or not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"probability and threshold must be in [0, 1]; got {self.probability_fractured} "
                             f"and {self.threshold}")
        if self.band not in BANDS:
            raise ValueError(f"unknown band {self.band!r}; valid: {', '.join(BANDS)}")
        if self.decision != decide(self.probability_fractured, self.threshold):
            raise ValueError(f"decision {self.decision!r} contradicts P(fractured) = {self.probability_fractured} "
                             f"at threshold {self.threshold}")


@dataclass(frozen=True)
class BatchImage:
    """One readable file of a batch: its report and both tiers of the radiograph check."""

    report: ImageReport
    looks_like_radiograph: bool
    like_training_data: bool
    heatmap_faded: bool = False  # drawn lighter because the image is not flagged (core.overlay.shown_opacity)


@dataclass(frozen=True)
class UnreadableFile:
    file_name: str
    reason: str  # the reader's message (ImageReadError), which never quotes a DICOM tag


@dataclass(frozen=True)
class ReportContext:
    """What every report of one moment shares: the threshold and its cost, the bands, the model, the date."""

    threshold: float
    threshold_label: str  # a preset's label, or "custom" (see threshold_label)
    test_cost: str  # see test_cost_sentence
    bands: TriageBands
    model_version: str
    created: datetime


@dataclass(frozen=True)
class BatchReport:
    """A batch in upload order, decided at one threshold."""

    images: tuple[BatchImage, ...]
    unreadable: tuple[UnreadableFile, ...]
    context: ReportContext


def image_report(file_name: str, result: ImageResult, overlay: np.ndarray, context: ReportContext, *,
                 colormap: str = "jet", heatmap_label: str = "Grad-CAM") -> ImageReport:
    """The report of one classified image (``overlay``: its heatmap blended over ``result.image``)."""
    return ImageReport(
        file_name=file_name, xray=np.round(result.image * 255).astype(np.uint8), overlay=overlay,
        colormap=colormap, heatmap_label=heatmap_label, probability_fractured=result.probability_fractured,
        threshold=context.threshold, threshold_label=context.threshold_label,
        band=context.bands.band(result.probability_fractured), decision=result.decision(context.threshold),
        test_cost=context.test_cost, model_version=context.model_version,
        radiograph_notice=result.radiograph_check.notice(), created=context.created)


def batch_image(file_name: str, result: ImageResult, overlay: np.ndarray, context: ReportContext, *,
                heatmap_faded: bool = False) -> BatchImage:
    """One readable file of a batch, with the overlay of its heatmap (the model's default, which every
    upload has)."""
    check = result.radiograph_check
    label = METHODS[result.heatmap_method or DEFAULT_METHOD]
    return BatchImage(image_report(file_name, result, overlay, context, heatmap_label=label), check.looks_like_radiograph,
                      not check.unlike_training_data, heatmap_faded)


def threshold_label(thresholds: OperatingThresholds, threshold: float) -> str:
    """The clinical label of the preset whose stored value is exactly ``threshold``, else "custom"."""
    name = thresholds.preset_at(threshold)
    return next((preset.label for preset in PRESETS if preset.name == name), CUSTOM_THRESHOLD)


def test_cost_sentence(point: OperatingPoint) -> str:
    """A threshold's cost on the test split from :meth:`core.heldout.HeldOutPredictions.at_threshold`."""
    return (f"On the held-out test split: sensitivity {percent(point.sensitivity)}, specificity "
            f"{percent(point.specificity)} ({describe_costs(point)}).")


test_cost_sentence.__test__ = False  # a public helper named "test_…", not a pytest test


def image_report_pdf(report: ImageReport) -> bytes:
    """A one-page A4 PDF of one image's verdict."""
    with _DRAWING:
        return _pdf([lambda figure: _draw_image_page(figure, report)], report.created)


def batch_report_pdf(batch: BatchReport) -> bytes:
    """A summary page, the table of every file, then the readable images, three to a page."""
    pages = [lambda figure: _draw_summary_page(figure, batch)]
    rows = [*batch.images, *batch.unreadable]
    for start in range(0, len(rows), TABLE_ROWS_PER_PAGE):
        pages.append(lambda figure, start=start: _draw_table_page(figure, batch, rows, start))
    for start in range(0, len(batch.images), GRID_ROWS_PER_PAGE):
        pages.append(lambda figure, start=start: _draw_grid_page(figure, batch, start))
    with _DRAWING:
        return _pdf(pages, batch.context.created)


# --- drawing ---------------------------------------------------------------------------------------

def _pdf(page_painters, created: datetime) -> bytes:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    # A fixed creation date (the report's own) makes the same report the same bytes.
    metadata = {**PDF_METADATA, "CreationDate": _aware(created), "ModDate": _aware(created)}
    with PdfPages(buffer, metadata=metadata) as pdf:
        for paint in page_painters:
            figure = Figure(figsize=A4_INCHES)
            paint(figure)
            pdf.savefig(figure)
    return buffer.getvalue()


def _draw_image_page(figure, report: ImageReport) -> None:
    _text(figure, 0.06, 0.955, "Fracture report", size=16, weight="bold")
    _text(figure, 0.06, 0.93, f"File: {_printable(report.file_name, 90)}", size=10)
    colour = BAND_COLOURS[report.band]
    _text(figure, 0.06, 0.885, f"Triage band: {BAND_TEXT[report.band]}", size=15, weight="bold", color=colour)
    _text(figure, 0.06, 0.865, BAND_MEANING[report.band].capitalize() + ".", size=9, color=colour)
    shown = shown_comparison(report.probability_fractured, report.threshold)
    lines = [f"Verdict at the threshold: {VERDICT_TEXT[report.decision]}",
             f"P(fractured) = {shown.probability} {shown.relation} threshold {shown.threshold} "
             f"({report.threshold_label})",
             *textwrap.wrap(report.test_cost, 100)]
    y = _lines(figure, 0.835, lines, size=10)
    if report.radiograph_notice:
        y = _lines(figure, y - 0.005, textwrap.wrap(report.radiograph_notice, 100), size=10, color=NOTICE_COLOUR)
    top = y - 0.035
    width, height = _pair(figure, report, top=top, box_inches=(0.42 * A4_INCHES[0], (top - 0.2) * A4_INCHES[1]))
    _colour_bar(figure, report, left=0.52, top=top - height - 0.02, width=width)
    _footer(figure, report.model_version, report.created)


def _draw_grid_page(figure, batch: BatchReport, start: int) -> None:
    """Up to :data:`GRID_ROWS_PER_PAGE` images, each a row: X-ray, overlay and its verdict."""
    images = batch.images[start : start + GRID_ROWS_PER_PAGE]
    _text(figure, 0.06, 0.955, f"Images {start + 1} to {start + len(images)} of {len(batch.images)}",
          size=14, weight="bold")
    row_height = 0.77 / GRID_ROWS_PER_PAGE
    for row, image in enumerate(images):
        top = 0.9 - row * row_height
        report = image.report
        _pair(figure, report, top=top, box_inches=(0.28 * A4_INCHES[0], (row_height - 0.04) * A4_INCHES[1]),
              max_side=GRID_IMAGE_SIDE, gap=0.02)
        probability = _probability(report.probability_fractured, report.threshold)
        y = _lines(figure, top + 0.012, textwrap.wrap(_printable(report.file_name, 120), 36), size=9, x=0.66,
                   weight="bold")
        y = _lines(figure, y, [BAND_TEXT[report.band]], size=11, x=0.66, weight="bold",
                   color=BAND_COLOURS[report.band])
        y = _lines(figure, y, [VERDICT_TEXT[report.decision], f"P(fractured) = {probability}"], size=9, x=0.66)
        if image.heatmap_faded:
            y = _lines(figure, y, ["Heatmap faded: not flagged"], size=8, x=0.66, color="#555555")
        _lines(figure, y, textwrap.wrap(report.radiograph_notice, 44), size=8, x=0.66, color=NOTICE_COLOUR)
    _colour_bar(figure, images[0].report, left=0.06, top=0.115, width=0.4)
    _footer(figure, batch.context.model_version, batch.context.created)


def _pair(figure, report: ImageReport, *, top: float, box_inches: tuple[float, float],
          max_side: int | None = None, gap: float = 0.04) -> tuple[float, float]:
    """The X-ray and its overlay side by side from ``top``, each fitted in ``box_inches`` (width,
    height) with its aspect kept; returns the width and height of each as fractions of the page."""
    rows, columns = report.overlay.shape[:2]
    width_inches = min(box_inches[0], box_inches[1] * columns / rows)
    width, height = width_inches / A4_INCHES[0], width_inches * rows / columns / A4_INCHES[1]
    pictures = ((report.xray, "X-ray"), (report.overlay, f"{report.heatmap_label} for 'fractured'"))
    for column, (pixels, title) in enumerate(pictures):
        pixels = pixels if max_side is None else fit_for_display(pixels, max_side)
        left = 0.06 + column * (box_inches[0] / A4_INCHES[0] + gap)
        axes = figure.add_axes((left, top - height, width, height))
        # interpolation="none" embeds the pixels as they are; the viewer scales them when zooming.
        axes.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=255, interpolation="none",
                    aspect="auto")
        axes.set_title(title, fontsize=9, parse_math=False, fontfeatures=PLAIN_LETTERS)
        axes.set_axis_off()
    return width, height


def _colour_bar(figure, report: ImageReport, *, left: float, top: float, width: float) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = figure.add_axes((left, top - 0.012, width, 0.012))
    figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), report.colormap), cax=bar, orientation="horizontal")
    bar.tick_params(labelsize=8)
    bar.set_xlabel(f"{report.heatmap_label}, relative to each image's own peak (not a probability)", fontsize=8,
                   parse_math=False, fontfeatures=PLAIN_LETTERS)


def _draw_summary_page(figure, batch: BatchReport) -> None:
    total = len(batch.images) + len(batch.unreadable)
    _text(figure, 0.06, 0.955, f"Fracture report: batch of {total} files", size=16, weight="bold")
    readable = [image.report for image in batch.images]
    flagged = sum(report.decision == FRACTURED_DECISION for report in readable)
    counts = {band: sum(report.band == band for report in readable) for band in reversed(BANDS)}
    context = batch.context
    doubt_from, fracture_from = (f"{edge:.{shown_decimals(edge, context.threshold)}f}"
                                 for edge in (context.bands.doubt_from, context.bands.fracture_from))
    lines = [f"Threshold {context.threshold:.3f} ({context.threshold_label}): "
             f"{flagged} of {len(readable)} readable files flagged as fracture suspected.",
             *textwrap.wrap(context.test_cost, 100), "",
             f"Triage bands (edges chosen on val: doubt from {doubt_from}, fracture from {fracture_from}):",
             *(f"    {BAND_TEXT[band]}: {count}" for band, count in counts.items()),
             f"    Unreadable: {len(batch.unreadable)}"]
    not_radiographs = sum(not image.looks_like_radiograph for image in batch.images)
    unlike = sum(not image.like_training_data for image in batch.images if image.looks_like_radiograph)
    if not_radiographs:
        lines.append(f"{not_radiographs} do not look like radiographs: their verdicts are meaningless.")
    if unlike:
        lines.append(f"{unlike} are X-rays unlike the training images: treat their verdicts with care.")
    y = _lines(figure, 0.915, lines, size=10)
    if batch.unreadable:
        listed = [f"{_printable(item.file_name, 40)}: {_printable(item.reason, 70)}" for item in batch.unreadable]
        shown = listed[: max(0, int((y - 0.16) / 0.018))]
        more = [f"... and {len(listed) - len(shown)} more (see the table)"] if len(shown) < len(listed) else []
        _lines(figure, y - 0.02, ["Files that could not be read:", *shown, *more], size=9)
    _footer(figure, batch.context.model_version, batch.context.created)


TABLE_COLUMNS = ((0.06, "File"), (0.37, "P(fractured)"), (0.49, "Band"), (0.60, "Verdict"),
                 (0.76, "Looks like an X-ray"))


def _draw_table_page(figure, batch: BatchReport, rows: list, start: int) -> None:
    _text(figure, 0.06, 0.955, "Every file, in upload order", size=14, weight="bold")
    for x, title in TABLE_COLUMNS:
        _text(figure, x, 0.92, title, size=9, weight="bold")
    y = 0.92
    for row in rows[start : start + TABLE_ROWS_PER_PAGE]:
        y -= 0.019
        for (x, _), cell in zip(TABLE_COLUMNS, _table_cells(row, batch.context.threshold)):
            _text(figure, x, y, cell, size=8)
    _footer(figure, batch.context.model_version, batch.context.created)


def _table_cells(row, threshold: float) -> tuple[str, ...]:
    if isinstance(row, UnreadableFile):
        return _printable(row.file_name, 40), "", "", "unreadable", ""
    report = row.report
    check = "yes" if row.looks_like_radiograph else "no"
    if row.looks_like_radiograph and not row.like_training_data:
        check = "yes, unlike training"
    return (_printable(report.file_name, 40), _probability(report.probability_fractured, threshold),
            BAND_TEXT[report.band], VERDICT_TEXT[report.decision], check)


def _footer(figure, model_version: str, created: datetime) -> None:
    _text(figure, 0.06, 0.05, f"Model {_printable(model_version, 60)} · report created "
                              f"{_aware(created):%Y-%m-%d %H:%M} UTC", size=8, color="#555555")
    _text(figure, 0.06, 0.03, DISCLAIMER, size=9, weight="bold")


def _lines(figure, top: float, lines: list[str], size: float, x: float = 0.06, **style) -> float:
    """Draws one line under another from ``top``; returns where the next line would go."""
    step = size / 72 / A4_INCHES[1] * 1.45
    for line in lines:
        _text(figure, x, top, line, size=size, **style)
        top -= step
    return top


def _text(figure, x: float, y: float, text: str, **style) -> None:
    # parse_math=False: a file name like "$x$.png" is text, never mathtext.
    figure.text(x, y, text, parse_math=False, fontsize=style.pop("size"), va="top", fontfeatures=PLAIN_LETTERS,
                **style)


def _printable(text: str, limit: int) -> str:
    """``text`` on one line (control characters as "?"), cut in the middle when longer than ``limit``."""
    flat = "".join("?" if unicodedata.category(character).startswith("C") else character for character in text)
    if len(flat) <= limit:
        return flat
    keep = limit - 3
    return flat[: keep - keep // 3] + "..." + flat[len(flat) - keep // 3 :]


def _probability(probability_fractured: float, threshold: float) -> str:
    """P(fractured) at 3 decimals, or as many more as keep it on its side of the threshold."""
    return shown_comparison(probability_fractured, threshold).probability


def _aware(created: datetime) -> datetime:
    return created.replace(tzinfo=timezone.utc) if created.tzinfo is None else created.astimezone(timezone.utc)


def _check_pixels(name: str, pixels: np.ndarray, *, allow_grey: bool) -> None:
    shapes = "(H, W) or (H, W, 3)" if allow_grey else "(H, W, 3)"
    valid = (isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.size > 0
             and ((pixels.ndim == 3 and pixels.shape[-1] == 3) or (allow_grey and pixels.ndim == 2)))
    if not valid:
        raise ValueError(f"{name} must be a non-empty uint8 array {shapes}; got "
                         f"{getattr(pixels, 'dtype', type(pixels))} {getattr(pixels, 'shape', '')}")
