"""Batch: many X-rays in, one sortable table out (with CSV), and any row's heatmap on demand."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, count

import streamlit as st

from core.classifier import ImageResult
from core.export import VERDICT_TEXT, BatchRow, results_csv
from core.imaging import SUPPORTED_FORMATS, ImageReadError
from core.thresholds import FRACTURED_DECISION
from pages import state
from pages.widgets import markdown_literal, threshold_sidebar


@dataclass(frozen=True)
class BatchItem:
    """One upload of the batch: its result, or why it could not be read.

    Items stay in upload order and are never looked up by file name: exports often repeat a
    name (an IM0001.dcm per study), and a file may be named like another upload's label.
    """

    file_name: str
    label: str  # how the heatmap picker names this upload; distinct from every other item's
    data: bytes
    result: ImageResult | None = None
    error: str | None = None

    @property
    def row(self) -> BatchRow:
        if self.result is None:
            return BatchRow(self.file_name, error=self.error)
        return BatchRow(self.file_name, self.result.probability_fractured,
                        radiograph_check=self.result.radiograph_check)


PAGE = "batch"  # this page's list of uploads in pages.state


def uploads_ui() -> list[state.Upload]:
    """The session's images on this page: every file dropped here, kept across page switches."""
    st.file_uploader(f"Drop many X-rays ({', '.join(SUPPORTED_FORMATS)})", accept_multiple_files=True,
                     **state.uploader_kwargs(PAGE))
    held = state.uploads(PAGE)
    if held:
        st.button(f"Clear all {len(held)} images", on_click=state.clear_uploads, args=(PAGE,), icon=":material/delete:")
    return held


def distinct_labels(names: list[str]) -> list[str]:
    """A label per upload, no two alike: its name, or for a name already taken the name and its
    place in the batch ("a.jpg (upload 3)"), numbered further if a file is itself called that."""
    labels, taken = [], set()
    for position, name in enumerate(names, start=1):
        candidates = chain([name, f"{name} (upload {position})"],
                           (f"{name} (upload {position}, {number})" for number in count(2)))
        label = next(candidate for candidate in candidates if candidate not in taken)
        labels.append(label)
        taken.add(label)
    return labels


def classify_ui(uploads: list) -> list[BatchItem]:
    items = []
    labels = distinct_labels([upload.name for upload in uploads])
    progress = st.progress(0.0, text="Classifying…")
    for index, (upload, label) in enumerate(zip(uploads, labels), start=1):
        data = upload.data
        try:
            items.append(BatchItem(upload.name, label, data, result=state.classify_upload(data)))
        except ImageReadError as error:
            items.append(BatchItem(upload.name, label, data, error=str(error)))
        progress.progress(index / len(uploads), text=f"Classified {index} of {len(uploads)}")
    progress.empty()
    return items


def summary_ui(items: list[BatchItem], threshold: float) -> None:
    readable = [item.result for item in items if item.result is not None]
    suspected = sum(result.decision(threshold) == FRACTURED_DECISION for result in readable)
    not_radiographs = sum(not result.radiograph_check.looks_like_radiograph for result in readable)
    unlike = sum(result.radiograph_check.unlike_training_data for result in readable)
    st.markdown(f"**{suspected} of {len(items)}** flagged at threshold {threshold:.3f}; "
                f"{len(items) - len(readable)} unreadable.")
    if not_radiographs:
        st.warning(f"{not_radiographs} of {len(items)} do not look like radiographs (see the last columns); "
                   "their verdicts are meaningless.")
    if unlike:
        st.info(f"{unlike} of {len(items)} are X-rays unlike the training images; treat their verdicts with care.")


def table_ui(items: list[BatchItem], threshold: float) -> None:
    rows = []
    for item in items:
        if item.result is None:
            rows.append({"file": item.file_name, "P(fractured)": None, "verdict": f"unreadable: {item.error}",
                         "looks like an X-ray": None, "like the training images": None})
            continue
        check = item.result.radiograph_check
        rows.append({"file": item.file_name, "P(fractured)": round(item.result.probability_fractured, 4),
                     "verdict": VERDICT_TEXT[item.result.decision(threshold)],
                     "looks like an X-ray": "yes" if check.looks_like_radiograph
                     else "no: " + "; ".join(check.not_radiograph_reasons),
                     "like the training images": "–" if not check.looks_like_radiograph
                     else "no: " + "; ".join(check.unlike_training_reasons) if check.unlike_training_data else "yes"})
    st.dataframe(rows, width="stretch", hide_index=True)


def csv_ui(items: list[BatchItem], threshold: float) -> None:
    csv_text = results_csv([item.row for item in items], threshold)
    st.download_button("Download CSV", csv_text, "fracture_batch.csv", "text/csv")


def heatmap_ui(items: list[BatchItem]) -> None:
    # Each option is one upload's label; labels are distinct (distinct_labels), so choosing one
    # picks exactly that upload, whatever names the others have.
    readable = {item.label: item for item in items if item.result is not None}
    if not readable:
        return
    chosen = readable[st.selectbox("Show the heatmap of", list(readable))]
    left, right = st.columns(2)
    left.image(state.xray_png(chosen.data), caption=markdown_literal(chosen.label), width="stretch")
    right.image(state.overlay_png(chosen.data), caption="Grad-CAM for 'fractured'", width="stretch")


def main() -> None:
    state.use_app_navigation()
    st.title("Batch")
    threshold = threshold_sidebar()
    uploads = uploads_ui()
    if not uploads:
        st.info("Results appear here as a table: file, P(fractured) and the verdict at the current threshold.")
        state.load_classifier()  # now, while the visitor picks files
        return
    items = classify_ui(uploads)
    summary_ui(items, threshold)
    table_ui(items, threshold)
    csv_ui(items, threshold)
    heatmap_ui(items)


main()
