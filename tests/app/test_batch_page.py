"""The Batch page through AppTest: a table row per file, a CSV, and a heatmap on demand."""

import csv
import io

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.artifacts import load_thresholds
from core.config import PROJECT_DIR
from core.export import VERDICT_TEXT
from core.thresholds import decide
from pages.state import THRESHOLD_KEY
from tests.app.media import download_data, image_pixels
from tests.app.page_text import shown

PAGE = str(PROJECT_DIR / "pages" / "batch.py")


def _png_bytes(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (300, 240), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _flat_png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((300, 240), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_batch_of_three_gives_three_rows_a_csv_and_a_heatmap():
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception
    app.file_uploader[0].set_value([(f"x{i}.png", _png_bytes(i), "image/png") for i in range(3)]).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["file"]) == ["x0.png", "x1.png", "x2.png"]
    assert table["P(fractured)"].between(0, 1).all()
    download = app.get("download_button")[0]
    assert download.label == "Download CSV"
    assert len(app.image) == 2  # the chosen row's X-ray and overlay
    app.selectbox[0].set_value("x2.png").run()
    assert not app.exception and shown(app.image[0].proto.imgs[0].caption) == "x2.png"


def test_unreadable_file_becomes_a_row_not_a_crash():
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    app.file_uploader[0].set_value([("good.png", _png_bytes(5), "image/png"),
                                    ("bad.jpg", b"PK\x03\x04zip", "image/jpeg")]).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert table.loc[table["file"] == "bad.jpg", "verdict"].iloc[0].startswith("unreadable: expected an image file")


def test_uploads_with_the_same_name_keep_their_own_rows_and_heatmaps():
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    app.file_uploader[0].set_value([("IM0001.png", _png_bytes(i), "image/png") for i in range(3)]).run()
    assert not app.exception
    assert list(app.dataframe[0].value["file"]) == ["IM0001.png"] * 3
    options = app.selectbox[0].options
    assert options == ["IM0001.png", "IM0001.png (upload 2)", "IM0001.png (upload 3)"]
    shown_images = set()
    for option in options:
        app.selectbox[0].set_value(option).run()
        assert not app.exception and shown(app.image[0].proto.imgs[0].caption) == option
        shown_images.add(app.image[0].proto.imgs[0].url)
    assert len(shown_images) == 3  # three different X-rays, not the last one three times


def test_the_count_the_table_and_the_csv_decide_alike_at_the_exact_threshold(media_files):
    specific = load_thresholds()["specific"]
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.session_state[THRESHOLD_KEY] = specific
    app.run()
    files = [("noise.png", _png_bytes(7)), ("grey.png", _flat_png(128)), ("black.png", _flat_png(0)),
             ("bad.png", b"<html>not an image</html>")]
    app.file_uploader[0].set_value([(name, data, "image/png") for name, data in files]).run()
    assert not app.exception

    rows = list(csv.DictReader(io.StringIO(download_data(app, "Download CSV", media_files).decode())))
    assert [row["file"] for row in rows] == [name for name, _ in files]
    assert {row["threshold"] for row in rows} == {f"{specific:.6f}"}  # the stored value, to 6 decimals
    readable = rows[:-1]
    for row in readable:
        assert row["verdict"] == VERDICT_TEXT[decide(float(row["probability_fractured"]), specific)]
    assert rows[-1]["verdict"].startswith("unreadable: ")
    flagged = sum(row["verdict"] == VERDICT_TEXT["fractured"] for row in readable)
    table = app.dataframe[0].value
    assert list(table["verdict"][:-1]) == [row["verdict"] for row in readable]
    assert any(element.value.startswith(f"**{flagged} of {len(files)}** flagged at threshold {specific:.3f}; 1 unreadable")
               for element in app.markdown)


def _pixels(image: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image)))


def test_a_file_named_like_another_uploads_label_keeps_every_upload_apart(media_files):
    # The picker once labelled the third upload "a.jpg (upload 3)", the second's own name: two
    # options for three images, and one of them showing the other's X-ray.
    uploads = [("a.jpg", _png_bytes(11)), ("a.jpg (upload 3)", _png_bytes(12)), ("a.jpg", _png_bytes(13))]
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    app.file_uploader[0].set_value([(name, data, "image/png") for name, data in uploads]).run()
    assert not app.exception
    assert list(app.dataframe[0].value["file"]) == [name for name, _ in uploads]
    assert any(element.value.endswith("; 0 unreadable.") and "of 3**" in element.value for element in app.markdown)
    rows = list(csv.DictReader(io.StringIO(download_data(app, "Download CSV", media_files).decode())))
    assert [row["file"] for row in rows] == [name for name, _ in uploads]

    options = app.selectbox[0].options
    assert len(options) == len(set(options)) == 3
    assert options[:2] == ["a.jpg", "a.jpg (upload 3)"]
    originals = [_pixels(data).astype(float) for _, data in uploads]
    for index, option in enumerate(options):  # each option shows its own upload's X-ray
        app.selectbox[0].set_value(option).run()
        assert not app.exception and shown(app.image[0].proto.imgs[0].caption) == option
        xray = image_pixels(app, 0, media_files).astype(float)  # Streamlit re-encodes it, lossily
        differences = [np.abs(xray - original).mean() for original in originals]
        assert np.argmin(differences) == index and differences[index] < 10, differences


def test_the_tables_own_csv_export_is_off_so_only_the_neutralised_csv_leaves():
    import tomllib

    config = tomllib.loads((PROJECT_DIR / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True
