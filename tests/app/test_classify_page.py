"""The Classify page through Streamlit's AppTest: upload, verdict, heatmap, threshold."""

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_DIR

APP = str(PROJECT_DIR / "streamlit_app.py")
TIMEOUT = 120  # the first run imports TensorFlow and loads the model


def _png_bytes() -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (454, 373), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _verdicts(app: AppTest) -> list[str]:
    return [element.value for element in [*app.success, *app.error]]


@pytest.fixture
def app():
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    assert not app.exception
    return app


def test_page_loads_with_a_disclaimer(app):
    assert app.title[0].value == "Bone fracture detection"
    assert "not a medical device" in app.caption[0].value


def test_upload_gives_a_verdict_and_a_heatmap_and_the_threshold_flips_it(app):
    app.file_uploader[0].upload("xray.png", _png_bytes(), "image/png").run()
    assert not app.exception
    assert len(app.image) == 2  # the X-ray and its Grad-CAM overlay
    app.sidebar.slider[0].set_value(0.0).run()
    assert any("Fracture suspected" in text for text in _verdicts(app))
    app.sidebar.slider[0].set_value(1.0).run()
    assert any("No fracture detected" in text for text in _verdicts(app))


def test_unreadable_upload_gets_a_clear_message(app):
    app.file_uploader[0].upload("notes.png", b"<html>not an image</html>", "image/png").run()
    assert not app.exception
    messages = [element.value for element in app.error]
    assert any("Could not read notes.png" in text and "expected an image file" in text for text in messages)
