"""Uploads that get the same P(fractured) (issue 25, item 2): two copies of one image under
different names, and one constant image in two formats. Each card's elements are keyed by its
upload, so no two collide (Streamlit's ``StreamlitDuplicateElementId``), and the uploader is drawn
before the results, so that a card that fails cannot take it away."""

import io

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

import pages.classify
from tests.app.app_pages import open_page, page_alone, whole_app
from tests.app.page_text import shown

TIMEOUT = 120  # the first run in the process imports TensorFlow and loads the model


def _encoded(pixels: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def _noise() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 255, (300, 240), dtype=np.uint8)


CONSTANT = np.full((256, 256), 128, np.uint8)
# Name, bytes, MIME: a copy of one image under two names; one constant image as PNG and as BMP.
SAME_P = [("first.png", _encoded(_noise(), "PNG"), "image/png"),
          ("copy of first.png", _encoded(_noise(), "PNG"), "image/png"),
          ("grey.png", _encoded(CONSTANT, "PNG"), "image/png"),
          ("grey.bmp", _encoded(CONSTANT, "BMP"), "image/bmp")]


def _verdicts(app: AppTest) -> list[str]:
    return [shown(element.value) for element in [*app.success, *app.warning, *app.error]
            if "P(fractured)" in element.value]


def _viewers(app: AppTest) -> int:
    return sum('"type":"image"' in chart.proto.spec for chart in app.get("plotly_chart"))


def _classify_page() -> AppTest:
    app = open_page(whole_app(default_timeout=TIMEOUT), "classify")
    app.run()
    return app


def test_uploads_with_the_same_probability_each_get_a_card_on_the_classify_page():
    app = _classify_page()
    app.file_uploader[0].set_value(SAME_P).run()
    assert not app.exception, [error.value for error in app.exception]
    verdicts = _verdicts(app)
    assert len(verdicts) == len(SAME_P), verdicts
    for name, *_ in SAME_P:
        assert sum(name in text for text in verdicts) == 1 + (name == "first.png"), (name, verdicts)
    assert _viewers(app) == len(SAME_P)
    assert len(app.file_uploader) == 1
    app.run()  # and every later run
    assert not app.exception and len(_verdicts(app)) == len(SAME_P) and len(app.file_uploader) == 1


def test_a_card_that_fails_keeps_the_uploader_and_the_other_cards(monkeypatch):
    original = pages.classify.verdict_ui

    def failing(name, *args, **kwargs):
        if name == "grey.bmp":
            raise RuntimeError("a bug in one card")
        return original(name, *args, **kwargs)

    monkeypatch.setattr(pages.classify, "verdict_ui", failing)
    app = _classify_page()
    app.file_uploader[0].set_value(SAME_P).run()
    assert not app.exception, [error.value for error in app.exception]
    assert len(app.file_uploader) == 1
    assert len(_verdicts(app)) == len(SAME_P) - 1
    errors = [shown(element.value) for element in app.error if "Could not show" in element.value]
    assert len(errors) == 1 and "grey.bmp" in errors[0] and "a bug in one card" in errors[0], errors


def test_uploads_with_the_same_probability_each_get_a_row_on_the_batch_page():
    app = page_alone("batch", default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].set_value(SAME_P).run()
    assert not app.exception, [error.value for error in app.exception]
    table = app.dataframe[0].value
    assert list(table["file"]) == [name for name, *_ in SAME_P]
    assert table["P(fractured)"].iloc[0] == table["P(fractured)"].iloc[1]
    assert table["P(fractured)"].iloc[2] == table["P(fractured)"].iloc[3]
    assert len(app.file_uploader) == 1 and len(app.image) == 2  # the selected row's X-ray and heatmap
    app.run()
    assert not app.exception and len(app.file_uploader) == 1
