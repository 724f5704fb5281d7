"""The Batch page through AppTest: a table row per file (thumbnail, P, band, verdict, checks), a CSV
and a PDF, and the clicked row's verdict and heatmap in any method.

A click on a row reaches the page as the table's selection state (``{"selection": {"rows": [i]}}``
under the table's key), which is what AppTest sets here; tests/e2e clicks the row in Chromium.
"""

import base64
import csv
import io
import json

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.artifacts import load_thresholds
from core.config import PROJECT_DIR
from core.heatmaps import METHODS
from core.reports import VERDICT_TEXT
from core.thresholds import decide
from core.triage import BAND_TEXT, TriageBands
from pages.batch import METHOD_KEY, TABLE_KEY
from ui.state import THRESHOLD_KEY
from tests.app.app_pages import open_page, page_alone, whole_app
from tests.app.media import deferred_data, download_data, image_pixels
from tests.app.page_text import shown
from tests.core.test_pdf_report import page_count, pdf_text

PAGE = "batch"
PDF_LABEL = "Download PDF report"


def _png_bytes(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (300, 240), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _flat_png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((300, 240), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _batch(files: list[tuple[str, bytes]], *, threshold: float | None = None) -> AppTest:
    app = page_alone(PAGE, default_timeout=120)
    if threshold is not None:
        app.session_state[THRESHOLD_KEY] = threshold
    app.run()
    assert not app.exception
    app.file_uploader[0].set_value([(name, data, "image/png") for name, data in files]).run()
    assert not app.exception
    return app


def _click_row(app: AppTest, position: int) -> None:
    app.session_state[TABLE_KEY] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    app.run()
    assert not app.exception


def _caption(app: AppTest, index: int) -> str:
    return shown(app.image[index].proto.imgs[0].caption)


def test_batch_of_three_gives_three_rows_a_csv_a_pdf_and_the_first_rows_heatmap():
    app = _batch([(f"x{i}.png", _png_bytes(i)) for i in range(3)])
    table = app.dataframe[0].value
    assert list(table["file"]) == ["x0.png", "x1.png", "x2.png"]
    assert table["P(fractured)"].between(0, 1).all()
    assert [button.label for button in app.get("download_button")] == ["Download CSV", PDF_LABEL]
    assert len(app.image) == 2  # the selected row's X-ray and overlay; the first row at first
    assert _caption(app, 0) == "x0.png (row 1)"
    _click_row(app, 2)
    assert _caption(app, 0) == "x2.png (row 3)"


def test_each_row_has_a_png_thumbnail_of_its_own_upload():
    app = _batch([("dark.png", _flat_png(30)), ("light.png", _flat_png(220)), ("bad.png", b"not an image")])
    thumbnails = list(app.dataframe[0].value["thumbnail"])
    assert thumbnails[2] is None or thumbnails[2] != thumbnails[2]  # None or NaN: nothing to show
    means = []
    for url in thumbnails[:2]:
        assert url.startswith("data:image/png;base64,")
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
        assert max(pixels.shape) <= 96
        means.append(pixels.mean())
    assert abs(means[0] - 30) < 2 and abs(means[1] - 220) < 2


def test_the_table_numbers_have_three_decimals_and_long_columns_fit_a_phone():
    app = _batch([("a.png", _png_bytes(1))])
    config = json.loads(app.dataframe[0].proto.columns)
    assert config["P(fractured)"]["type_config"]["format"] == "%.3f"
    assert config["file"]["pinned"] is True  # the name stays while the other columns scroll sideways
    order = list(app.dataframe[0].proto.column_order)
    assert order[:3] == ["file", "band", "P(fractured)"]  # on a 390 px screen these come first
    widths = [config[column]["width"] for column in order[:3]]
    assert sum(widths) + 40 <= 358, widths  # 390 px less the page's margins, with the row marker


def test_unreadable_file_becomes_a_row_not_a_crash():
    app = _batch([("good.png", _png_bytes(5)), ("bad.jpg", b"PK\x03\x04zip")])
    table = app.dataframe[0].value
    assert table.loc[table["file"] == "bad.jpg", "verdict"].iloc[0].startswith("unreadable: expected an image file")
    _click_row(app, 1)
    assert any(shown(error.value).startswith("Could not read bad.jpg (row 2): expected an image file")
               for error in app.error)
    assert len(app.image) == 0


def test_uploads_with_the_same_name_keep_their_own_rows_and_heatmaps():
    app = _batch([("IM0001.png", _png_bytes(i)) for i in range(3)])
    assert list(app.dataframe[0].value["file"]) == ["IM0001.png"] * 3
    shown_images = set()
    for position in range(3):
        _click_row(app, position)
        assert _caption(app, 0) == f"IM0001.png (row {position + 1})"
        shown_images.add(app.image[0].proto.imgs[0].url)
    assert len(shown_images) == 3  # three different X-rays, not the last one three times


def _pixels(image: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image)))


def test_each_row_shows_its_own_upload_whatever_the_file_names(media_files):
    # A file may be named like another upload's label once was ("a.jpg (upload 3)"): a row is
    # picked by its place in the table, so each row shows its own upload.
    uploads = [("a.jpg", _png_bytes(11)), ("a.jpg (upload 3)", _png_bytes(12)), ("a.jpg", _png_bytes(13))]
    app = _batch(uploads)
    assert list(app.dataframe[0].value["file"]) == [name for name, _ in uploads]
    assert any(element.value.endswith("; 0 unreadable.") and "of 3**" in element.value for element in app.markdown)
    rows = list(csv.DictReader(io.StringIO(download_data(app, "Download CSV", media_files).decode())))
    assert [row["file"] for row in rows] == [name for name, _ in uploads]

    originals = [_pixels(data).astype(float) for _, data in uploads]
    for position in range(3):
        _click_row(app, position)
        xray = image_pixels(app, 0, media_files).astype(float)  # Streamlit re-encodes it, lossily
        differences = [np.abs(xray - original).mean() for original in originals]
        assert np.argmin(differences) == position and differences[position] < 10, differences


def test_a_row_shows_its_heatmap_in_any_method(media_files):
    app = _batch([("a.png", _png_bytes(3)), ("b.png", _png_bytes(4))])
    _click_row(app, 1)
    first = image_pixels(app, 1, media_files)
    default = app.selectbox(key=METHOD_KEY).value  # the model's default heatmap, which the row comes with
    assert f"{METHODS[default]} for 'fractured'" in _caption(app, 1) and default != "layercam"
    app.selectbox(key=METHOD_KEY).set_value("layercam").run()
    assert not app.exception
    assert _caption(app, 0) == "b.png (row 2)"  # the same row, another method
    assert "Layer-CAM for 'fractured'" in _caption(app, 1)
    assert np.abs(image_pixels(app, 1, media_files).astype(float) - first).mean() > 1


def test_the_row_verdict_names_the_band_and_fades_the_heatmap_of_an_unflagged_image():
    names = ["a.png", "grey.png"]
    app = _batch(list(zip(names, [_png_bytes(8), _flat_png(128)])))
    probabilities = list(app.dataframe[0].value["P(fractured)"])
    position = int(np.argmin(probabilities))
    threshold = min(1.0, probabilities[position] + 1e-6)  # just above: this row is not flagged
    app.session_state[THRESHOLD_KEY] = threshold
    _click_row(app, position)
    bands = TriageBands.from_thresholds(load_thresholds())
    alerts = [shown(element.value) for element in [*app.error, *app.warning, *app.success]]
    band = BAND_TEXT[bands.band(probabilities[position])]
    assert any(alert.startswith(f"**{band}** — {names[position]} (row {position + 1}): No fracture detected; "
                                "P(fractured) = ")
               and " < threshold " in alert
               for alert in alerts), alerts
    assert "faded: not flagged at this threshold" in _caption(app, 1)


def test_the_count_the_table_the_csv_and_the_bands_decide_alike_at_the_exact_threshold(media_files):
    specific = load_thresholds()["specific"]
    bands = TriageBands.from_thresholds(load_thresholds())
    files = [("noise.png", _png_bytes(7)), ("grey.png", _flat_png(128)), ("black.png", _flat_png(0)),
             ("bad.png", b"<html>not an image</html>")]
    app = _batch(files, threshold=specific)

    rows = list(csv.DictReader(io.StringIO(download_data(app, "Download CSV", media_files).decode())))
    assert [row["file"] for row in rows] == [name for name, _ in files]
    assert {row["threshold"] for row in rows} == {f"{specific:.6f}"}  # the stored value, to 6 decimals
    readable = rows[:-1]
    for row in readable:
        assert row["verdict"] == VERDICT_TEXT[decide(float(row["probability_fractured"]), specific)]
        assert row["band"] == BAND_TEXT[bands.band(float(row["probability_fractured"]))]
    assert rows[-1]["verdict"].startswith("unreadable: ") and rows[-1]["band"] == ""
    flagged = sum(row["verdict"] == VERDICT_TEXT["fractured"] for row in readable)
    table = app.dataframe[0].value
    assert list(table["verdict"][:-1]) == [row["verdict"] for row in readable]
    assert list(table["band"][:-1]) == [row["band"] for row in readable]
    summary = f"**{flagged} of {len(files)}** flagged at threshold {specific:.3f}; 1 unreadable"
    assert any(element.value.startswith(summary) for element in app.markdown)
    per_band = {text: sum(row["band"] == text for row in readable) for text in BAND_TEXT.values()}
    caption = next(element.value for element in app.caption if element.value.startswith("Triage bands:"))
    assert all(f"{text} {count}" in caption for text, count in per_band.items()), caption


def test_the_batch_pdf_has_every_file_with_its_band_and_verdict_at_the_sessions_threshold(deferred_downloads):
    specific = load_thresholds()["specific"]
    files = [("first.png", _png_bytes(1)), ("second.png", _flat_png(90)), ("broken.png", b"GIF89a")]
    app = _batch(files, threshold=specific)
    pdf = deferred_data(app, PDF_LABEL, deferred_downloads)
    assert pdf.startswith(b"%PDF-")
    assert page_count(pdf) == 1 + 1 + 1  # summary, table, the two readable images on one page
    text = pdf_text(pdf)
    table = app.dataframe[0].value
    assert f"Threshold {specific:.3f} (Few false alarms)" in text and "Unreadable: 1" in text
    assert "broken.png: " in text  # why it could not be read
    for _, row in table.iloc[:2].iterrows():
        assert row["file"] in text and row["band"] in text and row["verdict"] in text
    unflagged = int((table["verdict"] == VERDICT_TEXT["not_fractured"]).sum())
    assert text.count("Heatmap faded: not flagged") == unflagged, text  # as on the page


def test_the_pdf_is_drawn_only_when_its_button_is_clicked(deferred_downloads, monkeypatch):
    import core.pdf_report

    drawn = []
    monkeypatch.setattr(core.pdf_report, "_pdf", lambda *args: drawn.append(args) or b"%PDF-")
    app = _batch([("a.png", _png_bytes(1))])
    _click_row(app, 0)
    assert drawn == []  # two runs, no PDF
    deferred_data(app, PDF_LABEL, deferred_downloads)
    assert len(drawn) == 1


def test_the_tables_own_csv_export_is_off_so_only_the_neutralised_csv_leaves():
    import tomllib

    config = tomllib.loads((PROJECT_DIR / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


def test_the_shown_row_and_the_uploads_survive_a_visit_to_another_page():
    app = whole_app(default_timeout=120)
    open_page(app, "batch").run()
    app.file_uploader[0].set_value([(f"v{i}.png", _png_bytes(20 + i), "image/png") for i in range(3)]).run()
    _click_row(app, 2)
    assert _caption(app, 0) == "v2.png (row 3)"
    open_page(app, "classify").run()
    assert not app.exception and not app.dataframe
    open_page(app, "batch").run()
    assert not app.exception
    assert list(app.dataframe[0].value["file"]) == ["v0.png", "v1.png", "v2.png"]
    assert _caption(app, 0) == "v2.png (row 3)"
