"""Batch: many X-rays in, one sortable table out (with CSV), and any row's heatmap on demand."""

import streamlit as st

from core import ImageReadError, SUPPORTED_FORMATS, decide
from core.inference import VERDICT_TEXT, results_csv
from pages.shared import (analyse_upload, load_classifier, markdown_literal, overlay_png, threshold_sidebar,
                          use_app_navigation, xray_png)

use_app_navigation()
st.title("Batch")
threshold = threshold_sidebar()
uploads = st.file_uploader(f"Drop many X-rays ({', '.join(SUPPORTED_FORMATS)})", accept_multiple_files=True)
if not uploads:
    st.info("Results appear here as a table: file, P(fractured) and the verdict at the current threshold.")
    load_classifier()  # now, while the visitor picks files
    st.stop()

rows, readable = [], {}
progress = st.progress(0.0, text="Classifying…")
for index, upload in enumerate(uploads, start=1):
    try:
        probability, _, _, check, _ = analyse_upload(upload.getvalue())
    except ImageReadError as error:
        rows.append({"file": upload.name, "P(fractured)": None, "verdict": f"unreadable: {error}",
                     "looks like an X-ray": None})
    else:
        # Exports often repeat a file name (an IM0001.dcm per study): every upload keeps its own entry.
        label = upload.name if upload.name not in readable else f"{upload.name} (upload {index})"
        readable[label] = upload.getvalue()
        rows.append({"file": upload.name, "P(fractured)": round(probability, 4),
                     "verdict": VERDICT_TEXT[decide(probability, threshold)],
                     "looks like an X-ray": "yes" if check.looks_like_radiograph else "no: " + "; ".join(check.reasons)})
    progress.progress(index / len(uploads), text=f"Classified {index} of {len(uploads)}")
progress.empty()

suspected = sum(row["verdict"] == VERDICT_TEXT["fractured"] for row in rows)
unlike = sum(str(row["looks like an X-ray"]).startswith("no") for row in rows)
st.markdown(f"**{suspected} of {len(rows)}** flagged at threshold {threshold:.3f}; "
            f"{len(rows) - len(readable)} unreadable.")
if unlike:
    st.warning(f"{unlike} of {len(rows)} do not look like radiographs (see the last column); "
               "their verdicts are unreliable.")
st.dataframe(rows, width="stretch", hide_index=True)
csv_text = results_csv([(row["file"], row["P(fractured)"], row["verdict"]) for row in rows], threshold)
st.download_button("Download CSV", csv_text, "fracture_batch.csv", "text/csv")

if readable:
    chosen = st.selectbox("Show the heatmap of", list(readable))
    left, right = st.columns(2)
    left.image(xray_png(readable[chosen]), caption=markdown_literal(chosen), width="stretch")
    right.image(overlay_png(readable[chosen]), caption="Grad-CAM for 'fractured'", width="stretch")
