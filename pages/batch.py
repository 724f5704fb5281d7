"""Batch: many X-rays in, one sortable table out (CSV and PDF), and the clicked row's verdict and heatmap."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import streamlit as st

from core.classifier import ImageResult
from core.reports import VERDICT_TEXT, BatchRow, results_csv
from core.heatmaps import METHODS, REGISTRY
from core.imaging import SUPPORTED_FORMATS, ImageReadError
from core.overlay import encode_png, fit_for_display, overlay_on_original, shown_opacity
from core.pdf_report import BatchReport, ReportContext, UnreadableFile, batch_image, batch_report_pdf
from core.preprocessing import PreprocessConfig
from core.thresholds import FRACTURED_DECISION
from core.triage import BAND_TEXT, BANDS, TriageBands, shown_comparison
from ui import state
from ui.entrypoint import run_entrypoint
from ui.widgets import (band_alert, heatmap_method_select, markdown_literal, radiograph_notice_ui,
                        threshold_sidebar, uploads_ui)

PAGE = "batch"  # this page's list of uploads in ui.state
TABLE_KEY = "batch-table"  # the table's selected row: the upload whose verdict and heatmap are shown
METHOD_KEY = "batch-heatmap-method"
# The row last shown: the table's own selection is dropped with the widget when the visitor opens
# another page, so it is kept here and restored on the way back.
SHOWN_ROW_KEY = "batch-shown-row"
THUMBNAIL_SIDE = 96  # px, long side: enough to tell a hand from a hip in a 48 px row
OPACITY = 0.4
COLORMAP = "jet"


@dataclass(frozen=True)
class BatchItem:
    """One upload of the batch: its result, or why it could not be read.

    Items stay in upload order and are never looked up by file name: exports often repeat a
    name (an IM0001.dcm per study), so the table's row number is what picks an upload.
    """

    file_name: str
    data: bytes
    result: ImageResult | None = None
    error: str | None = None

    @property
    def row(self) -> BatchRow:
        if self.result is None:
            return BatchRow(self.file_name, error=self.error)
        return BatchRow(self.file_name, self.result.probability_fractured,
                        radiograph_check=self.result.radiograph_check)


def classify_ui(uploads: list[state.Upload]) -> list[BatchItem]:
    items = []
    progress = st.progress(0.0, text="Classifying…")
    for index, upload in enumerate(uploads, start=1):
        try:
            items.append(BatchItem(upload.name, upload.data, result=state.classify_upload(upload.data)))
        except ImageReadError as error:
            items.append(BatchItem(upload.name, upload.data, error=str(error)))
        progress.progress(index / len(uploads), text=f"Classified {index} of {len(uploads)}")
    progress.empty()
    return items


def summary_ui(items: list[BatchItem], threshold: float, bands: TriageBands) -> None:
    readable = [item.result for item in items if item.result is not None]
    suspected = sum(result.decision(threshold) == FRACTURED_DECISION for result in readable)
    st.markdown(f"**{suspected} of {len(items)}** flagged at threshold {threshold:.3f}; "
                f"{len(items) - len(readable)} unreadable.")
    per_band = {band: sum(bands.band(result.probability_fractured) == band for result in readable)
                for band in reversed(BANDS)}
    st.caption("Triage bands: " + " · ".join(f"{BAND_TEXT[band]} {count}" for band, count in per_band.items())
               + ". Click a row to see its verdict and heatmap below.")
    not_radiographs = sum(not result.radiograph_check.looks_like_radiograph for result in readable)
    unlike = sum(result.radiograph_check.unlike_training_data for result in readable)
    if not_radiographs:
        st.warning(f"{not_radiographs} of {len(items)} do not look like radiographs (see the last columns); "
                   "their verdicts are meaningless.")
    if unlike:
        st.info(f"{unlike} of {len(items)} are X-rays unlike the training images; treat their verdicts with care.")


@st.cache_data(max_entries=1024, show_spinner=False)
def thumbnail_url(data: bytes) -> str:
    """A small PNG of the upload as a data URL (the table's thumbnail column), encoded once per upload."""
    image = fit_for_display(state.classify_upload(data).image, THUMBNAIL_SIDE)
    return "data:image/png;base64," + base64.b64encode(encode_png(np.round(image * 255).astype(np.uint8))).decode()


def table_rows(items: list[BatchItem], threshold: float, bands: TriageBands) -> list[dict]:
    rows = []
    for item in items:
        if item.result is None:
            rows.append({"thumbnail": None, "file": item.file_name, "P(fractured)": None, "band": None,
                         "verdict": f"unreadable: {item.error}", "looks like an X-ray": None,
                         "like the training images": None})
            continue
        check, probability = item.result.radiograph_check, item.result.probability_fractured
        rows.append({"thumbnail": thumbnail_url(item.data), "file": item.file_name, "P(fractured)": probability,
                     "band": BAND_TEXT[bands.band(probability)],
                     "verdict": VERDICT_TEXT[item.result.decision(threshold)],
                     "looks like an X-ray": "yes" if check.looks_like_radiograph else "no",
                     "like the training images": ("–" if not check.looks_like_radiograph
                                                  else "no" if check.unlike_training_data else "yes")})
    return rows


# The order and widths put the file, its band and P(fractured) on a 390 px phone screen; the
# rest scrolls sideways under the pinned file name.
COLUMNS = {
    "file": st.column_config.TextColumn("File", width=130, pinned=True),
    "band": st.column_config.TextColumn("Band", width=80, help="Triage band: fracture, doubt or no fracture"),
    "P(fractured)": st.column_config.NumberColumn("P(fractured)", format="%.3f", width=90,
                                                  help="Calibrated probability of a fracture"),
    "thumbnail": st.column_config.ImageColumn("X-ray", width=56),
    "verdict": st.column_config.TextColumn("Verdict", width=160, help="At the sidebar's threshold"),
    "looks like an X-ray": st.column_config.TextColumn(
        "Looks like an X-ray", width=130, help="No: a colour photo, a document… its verdict is meaningless"),
    "like the training images": st.column_config.TextColumn("Like the training images", width=160,
                                                            help="No: another hospital, body part or exposure"),
}


def table_ui(items: list[BatchItem], threshold: float, bands: TriageBands) -> int:
    """The table of every upload; returns the position of the selected row (the first at first)."""
    # A batch that shrank (an upload removed) can leave a stale position behind.
    shown = _within(st.session_state.get(SHOWN_ROW_KEY, 0), len(items))
    event = st.dataframe(table_rows(items, threshold, bands), hide_index=True, column_config=COLUMNS,
                         column_order=list(COLUMNS), row_height=48, key=TABLE_KEY, on_select="rerun",
                         selection_mode="single-row-required", selection_default={"selection": {"rows": [shown]}})
    selected = event.selection.rows
    position = _within(selected[0], len(items)) if selected else shown
    st.session_state[SHOWN_ROW_KEY] = position
    return position


def _within(position: int, count: int) -> int:
    return position if 0 <= position < count else 0


def batch_pdf(items: list[BatchItem], context: ReportContext, config: PreprocessConfig) -> bytes:
    """The batch's PDF report with each image's default heatmap (the map every upload already has).

    Run by the download button when clicked, on a thread of its own: it uses ``core`` only.
    """
    context = dataclasses.replace(context, created=datetime.now(timezone.utc))
    images, unreadable = [], []
    for item in items:
        if item.result is None:
            unreadable.append(UnreadableFile(item.file_name, item.error or ""))
            continue
        result = item.result
        flagged = result.decision(context.threshold) == FRACTURED_DECISION
        overlay = overlay_on_original(result.image, result.heatmap, config, source_shape=result.source_shape,
                                      opacity=shown_opacity(OPACITY, flagged), colormap=COLORMAP)
        images.append(batch_image(item.file_name, result, overlay, context, heatmap_faded=not flagged))
    return batch_report_pdf(BatchReport(tuple(images), tuple(unreadable), context))


def downloads_ui(items: list[BatchItem], threshold: float, bands: TriageBands) -> None:
    left, right = st.columns(2)
    left.download_button("Download CSV", results_csv([item.row for item in items], threshold, bands),
                         "fracture_batch.csv", "text/csv", on_click="ignore", icon=":material/table:")
    context, config = state.report_context(threshold, bands), state.load_classifier().preprocess_config
    # A callable: the PDF is drawn only when the button is clicked, not on every rerun.
    right.download_button("Download PDF report", lambda: batch_pdf(items, context, config),
                          "fracture_batch_report.pdf", "application/pdf", on_click="ignore",
                          icon=":material/picture_as_pdf:")


def verdict_ui(item: BatchItem, position: int, threshold: float, bands: TriageBands) -> None:
    name = markdown_literal(f"{item.file_name} (row {position + 1})")
    if item.result is None:
        st.error(f"Could not read {name}: {markdown_literal(item.error or '')}")
        return
    result = item.result
    band = bands.band(result.probability_fractured)
    shown = shown_comparison(result.probability_fractured, threshold)
    band_alert(band, f"**{BAND_TEXT[band]}** — {name}: {VERDICT_TEXT[result.decision(threshold)]}; "
                     f"P(fractured) = {shown.probability} {shown.relation} threshold {shown.threshold}")
    radiograph_notice_ui(result.radiograph_check)


def heatmap_method_ui() -> str:
    default = METHODS[state.default_heatmap()]
    return heatmap_method_select(METHOD_KEY, f"All explain the 'fractured' output; {default}, this model's default, "
                                             "comes with the verdict. Score-CAM and SmoothGrad are slower on CPU.")


def images_ui(item: BatchItem, position: int, method: str, threshold: float, columns: list) -> None:
    """The row's X-ray and its heatmap overlay, faded when the image is not flagged."""
    flagged = item.result.decision(threshold) == FRACTURED_DECISION
    slow = REGISTRY[method].slow
    with st.spinner(f"Computing {METHODS[method]}{' (slow on CPU)' if slow else ''}…", show_time=slow):
        overlay = state.overlay_png(item.data, method, shown_opacity(OPACITY, flagged), COLORMAP)
    left, right = columns
    left.image(state.xray_png(item.data), caption=markdown_literal(f"{item.file_name} (row {position + 1})"),
               width="stretch")
    faded = "" if flagged else "; faded: not flagged at this threshold"
    right.image(overlay, caption=f"{METHODS[method]} for 'fractured' (blue: little, red: this image's peak{faded})",
                width="stretch")


def selected_row_ui(item: BatchItem, position: int, threshold: float, bands: TriageBands) -> None:
    """The clicked row: its verdict and method beside its X-ray and heatmap (stacked on a phone)."""
    st.subheader("Selected row")
    about, *pictures = st.columns([2, 3, 3])
    with about:
        verdict_ui(item, position, threshold, bands)
        method = heatmap_method_ui() if item.result is not None else None
    if method is not None:
        images_ui(item, position, method, threshold, pictures)


def main() -> None:
    st.title("Batch")
    threshold = threshold_sidebar()
    uploads = uploads_ui(PAGE, f"Drop many X-rays ({', '.join(SUPPORTED_FORMATS)})")
    if not uploads:
        st.info("Results appear here as a table: file, P(fractured), triage band and the verdict at the "
                "current threshold; click a row for its heatmap.")
        state.load_classifier()  # now, while the visitor picks files
        return
    bands = TriageBands.from_thresholds(state.load_thresholds())
    items = classify_ui(uploads)
    summary_ui(items, threshold, bands)
    position = table_ui(items, threshold, bands)
    downloads_ui(items, threshold, bands)
    selected_row_ui(items[position], position, threshold, bands)


if __name__ == "__main__":  # run as a script, which only Streamlit's legacy pages/ mode does
    run_entrypoint()
