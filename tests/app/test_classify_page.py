"""The Classify page through Streamlit's AppTest: upload, verdict, heatmap, threshold, downloads."""

import html
import io
import json
import re

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.artifacts import load_held_out, load_thresholds
from core.classifier import FractureClassifier
from core.config import PROJECT_DIR
from core.export import VERDICT_TEXT
from core.heatmaps import METHODS
from core.heldout import describe_costs
from core.thresholds import PRESETS, decide
from pages.state import SLIDER_KEY, THRESHOLD_KEY
from tests.app.media import download_data, image_pixels
from tests.app.page_text import shown

APP = str(PROJECT_DIR / "streamlit_app.py")
TIMEOUT = 120  # the first run imports TensorFlow and loads the model


def _png_bytes(seed: int = 1) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (454, 373), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _oval_png() -> bytes:
    """A soft bright oval on black: with the shipped model its P(fractured) lies between the
    presets, so their verdicts differ."""
    rows, columns = np.mgrid[:400, :320]
    pixels = np.clip(255 - 200 * ((columns - 160) ** 2 / 60**2 + (rows - 200) ** 2 / 170**2), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _verdicts(app: AppTest) -> list[str]:
    return [shown(element.value) for element in [*app.success, *app.error]]


def _preset_button(app: AppTest, preset):
    value = load_thresholds()[preset.name]
    return next(button for button in app.sidebar.button if button.label == f"{preset.label} · {value:.3f}")


@pytest.fixture
def app():
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    assert not app.exception
    return app


@pytest.fixture(scope="module")
def classifier() -> FractureClassifier:
    """The shipped model, loaded apart from the page's cache: the reference answer."""
    return FractureClassifier.load()


def test_page_loads_with_a_disclaimer_and_the_exact_screening_threshold(app):
    assert app.title[0].value == "Bone fracture detection"
    assert "not a medical device" in app.caption[0].value
    screening = load_thresholds()["screening"]
    assert app.session_state[THRESHOLD_KEY] == screening  # as stored, not rounded
    assert app.slider(key=SLIDER_KEY).value == pytest.approx(screening, abs=0.0005)
    assert "Preset: **Catch almost every fracture**" in [block.value for block in app.sidebar.markdown]


def test_upload_gives_a_verdict_a_heatmap_and_downloads(app):
    app.file_uploader[0].upload("xray.png", _png_bytes(), "image/png").run()
    assert not app.exception
    assert len(app.image) == 2  # the X-ray and its Grad-CAM overlay
    assert len(_verdicts(app)) == 1 and "xray.png" in _verdicts(app)[0]
    labels = [button.label for button in app.get("download_button")]
    assert labels == ["Overlay (PNG)", "Report (JSON)"]


def test_moving_the_threshold_flips_the_verdict_and_the_test_split_figures(app):
    app.file_uploader[0].upload("xray.png", _png_bytes(), "image/png").run()
    held_out = load_held_out()
    app.slider(key=SLIDER_KEY).set_value(0.0).run()
    assert app.session_state[THRESHOLD_KEY] == 0.0
    assert any("Fracture suspected" in text for text in _verdicts(app))
    low_costs = [c.value for c in app.sidebar.caption]
    assert describe_costs(held_out.at_threshold(0.0)).capitalize() + "." in low_costs
    app.slider(key=SLIDER_KEY).set_value(1.0).run()
    assert any("No fracture detected" in text for text in _verdicts(app))
    high_costs = [c.value for c in app.sidebar.caption]
    assert describe_costs(held_out.at_threshold(1.0)).capitalize() + "." in high_costs
    assert low_costs != high_costs
    assert "Custom threshold (no preset)" in [block.value for block in app.sidebar.markdown]


def test_each_preset_decides_with_its_exact_stored_value(app, media_files, classifier):
    thresholds = load_thresholds()
    data = _oval_png()
    probability = classifier.classify(data, heatmap="gradcam").probability_fractured  # what the page runs
    for preset in PRESETS:
        exact = thresholds[preset.name]
        _preset_button(app, preset).click().run()
        app.file_uploader[0].set_value((f"{preset.name}.png", data, "image/png")).run()
        assert not app.exception
        assert app.session_state[THRESHOLD_KEY] == exact  # the stored value itself, never round(exact, 3)
        assert _preset_button(app, preset).proto.type == "primary"  # shown as the active preset
        assert f"Preset: **{preset.label}**" in [block.value for block in app.sidebar.markdown]
        [verdict] = _verdicts(app)
        assert verdict.startswith(f"**{VERDICT_TEXT[decide(probability, exact)]}** — {preset.name}.png: ")
        assert f"(threshold {exact:.3f})" in verdict  # rounded for display only
        report = json.loads(download_data(app, "Report (JSON)", media_files))
        assert report["threshold"] == round(exact, 6)
        assert report["decision"] == decide(probability, exact)
        assert report["probability_fractured"] == round(probability, 6)
        # Any other widget's rerun keeps the exact value (the slider holds multiples of 0.001).
        next(slider for slider in app.slider if slider.label == "Heatmap opacity").set_value(0.5).run()
        assert app.session_state[THRESHOLD_KEY] == exact


def test_several_uploads_each_get_a_verdict_and_a_bad_one_a_clear_message(app):
    app.file_uploader[0].set_value([
        ("one.png", _png_bytes(1), "image/png"),
        ("notes.png", b"<html>not an image</html>", "image/png"),
        ("two.png", _png_bytes(2), "image/png"),
    ]).run()
    assert not app.exception
    verdicts = _verdicts(app)
    assert any("one.png" in text for text in verdicts) and any("two.png" in text for text in verdicts)
    messages = [shown(element.value) for element in app.error]
    assert any("Could not read notes.png" in text and "expected an image file" in text for text in messages)
    assert len(app.image) == 4


@pytest.mark.parametrize("method", ["gradcam++", "layercam", "scorecam", "smoothgrad"])
def test_switching_the_heatmap_method_changes_the_overlay_pixels(app, media_files, method):
    app.file_uploader[0].upload("xray.png", _png_bytes(), "image/png").run()
    assert app.image[1].proto.imgs[0].caption == "Grad-CAM for 'fractured'"
    xray, grad_cam = image_pixels(app, 0, media_files), image_pixels(app, 1, media_files)
    app.selectbox[0].set_value(method).run()
    assert not app.exception
    assert app.image[1].proto.imgs[0].caption == f"{METHODS[method]} for 'fractured'"
    other = image_pixels(app, 1, media_files)
    assert np.array_equal(image_pixels(app, 0, media_files), xray)  # the X-ray stays as it was
    assert other.shape == grad_cam.shape == (*xray.shape[:2], 3)
    assert not np.array_equal(other, grad_cam)


def test_a_colour_photograph_gets_its_verdict_marked_unreliable(app):
    from sklearn.datasets import load_sample_image

    buffer = io.BytesIO()
    Image.fromarray(load_sample_image("flower.jpg")).save(buffer, format="JPEG")
    app.file_uploader[0].upload("holiday.jpg", buffer.getvalue(), "image/jpeg").run()
    assert not app.exception
    assert len(_verdicts(app)) == 1 and "holiday.jpg" in _verdicts(app)[0]
    warnings = [element.value for element in app.warning]
    assert any("does not look like a radiograph" in text and "colour image" in text for text in warnings)


def test_a_real_radiograph_gets_no_warning(app):
    from training.config import DEFAULT_DATA_DIR

    image = DEFAULT_DATA_DIR / "images" / "fractured" / "IMG0000019.jpg"
    if not image.is_file():
        pytest.skip(f"FracAtlas not found at {DEFAULT_DATA_DIR}")
    app.file_uploader[0].upload("xray.jpg", image.read_bytes(), "image/jpeg").run()
    assert not app.exception
    assert len(_verdicts(app)) == 1 and not app.warning


MARKDOWN_NAMES = ("x*ray*_1_.png", "cost $5 and $6.png", ":red[alert] :material/warning: [a](b).png",
                  "# `code` <b>bold</b> back\\slash.png", "a&copy;b &#169; &#x41; &amp;.png")


def rendered(markdown: str) -> str:
    """The text a CommonMark renderer (Streamlit's markdown is CommonMark) shows for ``markdown``:
    escapes dropped and HTML entities decoded, as the browser shows it."""
    markdown_it = pytest.importorskip("markdown_it")
    html_text = markdown_it.MarkdownIt("commonmark").renderInline(markdown)
    return html.unescape(re.sub(r"<[^>]*>", "", html_text))  # tags the markdown made, then entities


@pytest.mark.parametrize("name", MARKDOWN_NAMES)
def test_a_file_name_is_shown_as_typed_not_as_markdown(app, name):
    app.file_uploader[0].upload(name, _png_bytes(3), "image/png").run()
    assert not app.exception
    verdicts = _verdicts(app)
    assert len(verdicts) == 1 and f"— {name}: P(fractured)" in verdicts[0]
    assert f"— {name}: P(fractured)" in rendered([*app.success, *app.error][0].value)
    unreadable = name.replace(".png", ".jpg")
    app.file_uploader[0].upload(unreadable, b"<html>*not*</html>", "image/jpeg").run()
    errors = [shown(element.value) for element in app.error]
    assert any(error.startswith(f"Could not read {unreadable}: ") and "'<html>*not*</htm'" in error
               for error in errors), errors
    assert any(rendered(element.value).startswith(f"Could not read {unreadable}: ") for element in app.error)


def test_an_html_entity_in_a_name_is_kept_as_typed():
    from pages.widgets import markdown_literal

    assert rendered(markdown_literal("a&copy;b.jpg")) == "a&copy;b.jpg"  # not "a©b.jpg"
    assert rendered(markdown_literal("&#169;&#x41;&amp;&lt;b&gt;")) == "&#169;&#x41;&amp;&lt;b&gt;"
