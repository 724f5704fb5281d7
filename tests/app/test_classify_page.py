"""The Classify page through Streamlit's AppTest: upload, band and verdict, viewer, heatmap,
threshold, samples, DICOM window, downloads."""

import base64
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
from core.reports import VERDICT_TEXT
from core.heatmaps import METHODS, SLOW_METHODS
from core.heldout import describe_costs
from core.overlay import UNFLAGGED_FADE
from core.samples import load_samples, sample_bytes
from core.thresholds import PRESETS, decide
from core.triage import BAND_TEXT, DOUBT_BAND, FRACTURE_BAND, NO_FRACTURE_BAND, TriageBands, shown_comparison
from ui.state import SLIDER_KEY, THRESHOLD_KEY
from tests.app.media import deferred_data, download_data
from tests.app.page_text import shown
from tests.core.test_pdf_report import page_count, pdf_text

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


BAND_ALERTS = {FRACTURE_BAND: "error", DOUBT_BAND: "warning", NO_FRACTURE_BAND: "success"}


def _verdict_alerts(app: AppTest) -> list:
    """The verdict alerts, whatever their band's colour: those that say a verdict."""
    return [element for element in [*app.success, *app.warning, *app.error]
            if any(words in element.value for words in VERDICT_TEXT.values())]


def _verdicts(app: AppTest) -> list[str]:
    return [shown(element.value) for element in _verdict_alerts(app)]


def _charts(app: AppTest) -> list[dict]:
    """Every Plotly figure on the page, as the JSON the browser receives."""
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def _figures(app: AppTest) -> list[dict]:
    """The viewers: the figures that show an X-ray."""
    return [chart for chart in _charts(app) if _traces(chart, "image")]


def _band_strips(app: AppTest) -> list[dict]:
    return [chart for chart in _charts(app) if not _traces(chart, "image")]


def _traces(figure: dict, kind: str) -> list[dict]:
    return [trace for trace in figure["data"] if trace["type"] == kind]


def _array(encoded) -> np.ndarray:
    """A Plotly typed array ({"dtype", "bdata", "shape"}) or a nested list, as numpy."""
    if isinstance(encoded, dict):
        values = np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"])
        shape = tuple(int(side) for side in str(encoded.get("shape", len(values))).split(","))
        return values.reshape(shape)
    return np.asarray(encoded)


def _xray_pixels(figure: dict, index: int = 0) -> np.ndarray:
    source = _traces(figure, "image")[index]["source"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))))


def _says_active_preset(app: AppTest, label: str) -> bool:
    """The sidebar names ``label`` as the active preset (ui/widgets.py words the line)."""
    return any("preset" in block.value.lower() and f"**{label}**" in block.value for block in app.sidebar.markdown)


def _upload(app: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    app.file_uploader[0].upload(name, data, mime).run()
    assert not app.exception
    return app


def _control(app: AppTest, kind: str, label: str):
    return next(widget for widget in app.get(kind) if widget.label == label)


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


def test_page_loads_with_a_disclaimer_the_exact_screening_threshold_and_how_to_read_it(app):
    assert app.title[0].value == "Bone fracture detection"
    assert "not a medical device" in app.caption[0].value
    screening = load_thresholds()["screening"]
    assert app.session_state[THRESHOLD_KEY] == screening  # as stored, not rounded
    assert app.slider(key=SLIDER_KEY).value == pytest.approx(screening, abs=0.0005)
    assert _says_active_preset(app, "Catch almost every fracture")
    sentences = [block.value for block in app.main.markdown]
    for subject in ("**The verdict**", "**The threshold**", "**The heatmap**"):
        assert sum(text.startswith(subject) for text in sentences) == 1, sentences
    [strip] = _band_strips(app)  # the bands and the threshold, as each verdict will show them
    bands = TriageBands.from_thresholds(load_thresholds())
    edges = sorted({value for shape in strip["layout"]["shapes"] if shape["type"] == "rect"
                    for value in (shape["x0"], shape["x1"])})
    assert edges == [0.0, bands.doubt_from, bands.fracture_from, 1.0]
    assert f"threshold {screening:.3f}" in [label["text"] for label in strip["layout"]["annotations"]]


def test_upload_gives_one_verdict_alert_a_viewer_and_downloads(app):
    _upload(app, "xray.png", _png_bytes())
    assert len(_verdicts(app)) == 1 and "xray.png" in _verdicts(app)[0]
    [figure] = _figures(app)
    assert len(_traces(figure, "image")) == 2 and len(_traces(figure, "heatmap")) == 1  # X-ray | X-ray + heatmap
    labels = [button.label for button in app.get("download_button")]
    assert labels == ["Overlay (PNG)", "Report (JSON)", "Report (PDF)"]


def test_the_verdict_comes_before_the_uploader_once_there_are_images(app):
    _upload(app, "xray.png", _png_bytes())
    kinds = [element.type for element in app.main.children.values()]
    # title, disclaimer, then the result's columns (the verdict first among them), then the uploader
    assert kinds[:3] == ["title", "caption", "flex_container"], kinds
    assert kinds.index("flex_container") < kinds.index("file_uploader")


def test_the_viewer_shows_the_xray_at_its_own_resolution(app):
    pixels = np.random.default_rng(5).integers(0, 255, (1300, 1000), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    _upload(app, "large.png", buffer.getvalue())
    [figure] = _figures(app)
    shown_pixels = _xray_pixels(figure)
    assert shown_pixels.shape == (1300, 1000)  # not the 800 px display copy
    np.testing.assert_array_equal(shown_pixels, pixels)
    assert np.array_equal(_xray_pixels(figure, 1), shown_pixels)  # both panels show the same picture


def test_moving_the_threshold_flips_the_verdict_and_the_test_split_figures(app):
    _upload(app, "xray.png", _png_bytes())
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
    bands = TriageBands.from_thresholds(thresholds)
    data = _oval_png()
    probability = classifier.classify(data, heatmap="gradcam").probability_fractured  # what the page runs
    for preset in PRESETS:
        exact = thresholds[preset.name]
        _preset_button(app, preset).click().run()
        app.file_uploader[0].set_value((f"{preset.name}.png", data, "image/png")).run()
        assert not app.exception
        assert app.session_state[THRESHOLD_KEY] == exact  # the stored value itself, never round(exact, 3)
        assert _preset_button(app, preset).proto.type == "primary"  # shown as the active preset
        assert _says_active_preset(app, preset.label)
        [verdict] = _verdicts(app)
        decision = decide(probability, exact)
        assert verdict.startswith(f"**{BAND_TEXT[bands.band(probability)]}** · {preset.name}.png")
        assert f"**{VERDICT_TEXT[decision]}** at your threshold" in verdict
        assert str(shown_comparison(probability, exact)) in verdict  # rounded for display only
        [strip] = [chart for chart in _band_strips(app) if chart["data"]]  # the one with this image's marker
        assert strip["data"][0]["x"] == [probability]
        assert f"P = {shown_comparison(probability, exact).probability}" in [
            label["text"] for label in strip["layout"]["annotations"]]
        report = json.loads(download_data(app, "Report (JSON)", media_files))
        assert report["threshold"] == round(exact, 6)
        assert report["decision"] == decision
        assert report["probability_fractured"] == round(probability, 6)
        # Any other widget's rerun keeps the exact value (the slider holds multiples of 0.001).
        _control(app, "slider", "Heatmap opacity").set_value(0.5).run()
        assert app.session_state[THRESHOLD_KEY] == exact


def test_the_alert_takes_the_band_colour_and_keeps_the_verdict_at_the_threshold(app, classifier):
    bands = TriageBands.from_thresholds(load_thresholds())
    data = _oval_png()
    probability = classifier.classify(data, heatmap="gradcam").probability_fractured
    band = bands.band(probability)
    _upload(app, "oval.png", data)
    for threshold in (0.0, 1.0):  # the band stays; the verdict follows the threshold
        app.slider(key=SLIDER_KEY).set_value(threshold).run()
        [alert] = _verdict_alerts(app)
        assert type(alert).__name__.lower() == BAND_ALERTS[band]
        assert f"**{VERDICT_TEXT[decide(probability, threshold)]}**" in alert.value
        assert "oval.png" in shown(alert.value)


@pytest.mark.parametrize("sample", load_samples(), ids=lambda sample: sample.caption)
def test_each_sample_gets_the_alert_colour_of_its_band(app, classifier, sample):
    """The shipped samples span the three bands (fracture, doubt, no fracture)."""
    data = sample_bytes(sample)
    probability = classifier.classify(data, heatmap="gradcam").probability_fractured
    band = TriageBands.from_thresholds(load_thresholds()).band(probability)
    _upload(app, sample.name, data, "image/jpeg")
    [alert] = _verdict_alerts(app)
    assert type(alert).__name__.lower() == BAND_ALERTS[band]
    assert shown(alert.value).startswith(f"**{BAND_TEXT[band]}** · {sample.name}")


def test_a_probability_just_under_the_threshold_never_reads_as_equal(app, classifier):
    data = _oval_png()
    probability = classifier.classify(data, heatmap="gradcam").probability_fractured
    _upload(app, "oval.png", data)
    threshold = probability + 4e-5  # 3 decimals would show the same number on both sides
    app.session_state[THRESHOLD_KEY] = threshold
    app.run()
    [verdict] = _verdicts(app)
    assert "**No fracture detected**" in verdict
    shown_numbers = re.search(r"P\(fractured\) = ([0-9.]+) < ([0-9.]+)", verdict)
    assert shown_numbers, verdict
    assert float(shown_numbers.group(1)) < float(shown_numbers.group(2))


def test_an_unflagged_image_has_a_faded_heatmap_no_outlines_and_says_so(app):
    _upload(app, "xray.png", _png_bytes())
    opacity = _control(app, "slider", "Heatmap opacity").value
    app.slider(key=SLIDER_KEY).set_value(1.0).run()  # nothing is flagged at 1.0 (P < 1)
    [figure] = _figures(app)
    [heatmap] = _traces(figure, "heatmap")
    assert heatmap["opacity"] == pytest.approx(opacity * UNFLAGGED_FADE)
    assert not [trace for trace in _traces(figure, "scatter") if trace.get("legendgroup") == "outline"]
    assert any("faded: the image is not flagged" in caption.value for caption in app.main.caption)


def test_a_flagged_image_has_its_heatmap_at_full_opacity_and_outlines(app):
    _upload(app, "xray.png", _png_bytes())
    opacity = _control(app, "slider", "Heatmap opacity").value
    app.slider(key=SLIDER_KEY).set_value(0.0).run()  # everything is flagged at 0.0
    [figure] = _figures(app)
    [heatmap] = _traces(figure, "heatmap")
    assert heatmap["opacity"] == pytest.approx(opacity)
    outlines = [trace for trace in _traces(figure, "scatter") if trace.get("legendgroup") == "outline"]
    assert outlines and {trace["xaxis"] for trace in outlines} == {"x", "x2"}
    assert any("White outlines" in caption.value for caption in app.main.caption)


def test_the_heatmap_caption_states_the_measured_localisation_plainly(app, classifier):
    from core.artifacts import load_metrics

    measured_figures = load_metrics().localisation
    if not measured_figures:
        pytest.skip("models/metrics.json has no localisation figures (python -m training.localisation)")
    figures = measured_figures.get(classifier.default_heatmap) or next(iter(measured_figures.values()))
    _upload(app, "xray.png", _png_bytes())
    hits, count, measured = figures.peak_inside_box, figures.n_images, METHODS[figures.method]
    [caption] = [c.value for c in app.main.caption if "radiologists' box" in c.value]
    found = (f"its peak fell inside the radiologists' box in {hits} ({hits / count:.0%}) of {count} fractured "
             f"{figures.split} images.")
    if figures.method == classifier.default_heatmap:  # the page starts on the default
        assert caption.endswith(f"How far to trust {measured}: {found}")
    else:
        assert caption.endswith(f"not measured for {METHODS[classifier.default_heatmap]}; for {measured}, {found}")
    assert " only " not in caption


def test_the_method_box_offers_what_the_shipped_model_draws_starting_on_its_default(app, classifier):
    _upload(app, "xray.png", _png_bytes())
    box = _control(app, "selectbox", "Heatmap method")
    assert box.options == [METHODS[method] for method in classifier.explainer.methods]
    assert box.value == classifier.default_heatmap
    assert f"{METHODS[classifier.default_heatmap]}, this model's default, comes with the verdict" in box.help


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
    assert len(_figures(app)) == 2


@pytest.mark.parametrize("method", ["gradcam++", "layercam", "scorecam", "smoothgrad"])
def test_switching_the_heatmap_method_changes_the_heatmap_and_not_the_xray(app, classifier, method):
    _upload(app, "xray.png", _png_bytes())
    [figure] = _figures(app)
    xray, default_map = _xray_pixels(figure), _array(_traces(figure, "heatmap")[0]["z"])
    assert any(c.value.startswith(f"{METHODS[classifier.default_heatmap]} for 'fractured'") for c in app.main.caption)
    _control(app, "selectbox", "Heatmap method").set_value(method).run()
    assert not app.exception
    [figure] = _figures(app)
    other = _array(_traces(figure, "heatmap")[0]["z"])
    assert any(c.value.startswith(f"{METHODS[method]} for 'fractured'") for c in app.main.caption)
    assert np.array_equal(_xray_pixels(figure), xray)  # the X-ray stays as it was
    assert other.shape == default_map.shape
    assert not np.array_equal(other, default_map)


def test_method_labels_and_help_agree_on_which_methods_are_slow(app):
    _upload(app, "xray.png", _png_bytes())
    help_text = _control(app, "selectbox", "Heatmap method").help
    for method in SLOW_METHODS:
        assert "fast" not in METHODS[method].lower()  # a label does not promise speed the help denies
    assert "Score-CAM" in help_text and "SmoothGrad" in help_text


def test_the_overlay_view_is_one_image_with_a_heatmap_switch(app):
    _upload(app, "xray.png", _png_bytes())
    _control(app, "button_group", "View").set_value("Overlay").run()
    assert not app.exception
    [figure] = _figures(app)
    assert len(_traces(figure, "image")) == 1 and len(_traces(figure, "heatmap")) == 1
    [menu] = figure["layout"]["updatemenus"]
    assert [button["label"] for button in menu["buttons"]] == ["Heatmap on", "X-ray only"]


def test_a_sample_with_boxes_offers_the_radiologists_boxes_on_the_viewer(app):
    sample = next(sample for sample in load_samples() if sample.boxes)
    _upload(app, sample.name, sample_bytes(sample), "image/jpeg")
    toggle = _control(app, "toggle", "Show the radiologists' boxes")
    [figure] = _figures(app)
    assert not [trace for trace in _traces(figure, "scatter") if trace.get("legendgroup") == "boxes"]
    toggle.set_value(True).run()
    [figure] = _figures(app)
    boxes = [trace for trace in _traces(figure, "scatter") if trace.get("legendgroup") == "boxes"]
    assert len(boxes) == 2 * len(sample.boxes)  # in both panels
    height, width = _xray_pixels(figure).shape[:2]
    box = sample.boxes[0]
    assert min(boxes[0]["x"]) == pytest.approx(box.left * width - 0.5)
    assert max(boxes[0]["y"]) == pytest.approx(box.bottom * height - 0.5)


def test_an_upload_that_is_no_sample_has_no_boxes_toggle(app):
    _upload(app, "xray.png", _png_bytes())
    assert not [toggle for toggle in app.toggle if toggle.label == "Show the radiologists' boxes"]


def test_a_dicom_gets_window_presets_that_change_the_picture_and_not_the_verdict(app):
    from tests.corpus import dicom_bytes

    rows, columns = np.mgrid[:120, :100]
    pixels = (200 + 30 * rows + 5 * columns).astype(np.uint16)
    _upload(app, "knee.dcm", dicom_bytes(pixels), "application/dicom")
    window = _control(app, "selectbox", "Window")
    assert window.options == ["File default", "Bone", "Soft tissue", "Manual"]
    verdict, default = _verdicts(app), _xray_pixels(_figures(app)[0])
    window.set_value("Bone").run()
    assert not app.exception
    assert _verdicts(app) == verdict  # the model reads the file's own window, whatever is shown
    bone = _xray_pixels(_figures(app)[0])
    assert bone.shape == default.shape and not np.array_equal(bone, default)
    _control(app, "selectbox", "Window").set_value("Manual").run()
    low, high = _control(app, "slider", "Window: black at, white at").value
    assert low < high


def test_a_plain_image_has_no_window_control(app):
    _upload(app, "xray.png", _png_bytes())
    assert not [box for box in app.selectbox if box.label == "Window"]


def test_a_colour_photograph_gets_its_verdict_marked_unreliable(app):
    from sklearn.datasets import load_sample_image

    buffer = io.BytesIO()
    Image.fromarray(load_sample_image("flower.jpg")).save(buffer, format="JPEG")
    _upload(app, "holiday.jpg", buffer.getvalue(), "image/jpeg")
    assert len(_verdicts(app)) == 1 and "holiday.jpg" in _verdicts(app)[0]
    warnings = [element.value for element in app.warning]
    assert any("does not look like a radiograph" in text and "colour image" in text for text in warnings)


def test_a_real_radiograph_gets_no_warning(app):
    from training.config import DEFAULT_DATA_DIR

    image = DEFAULT_DATA_DIR / "images" / "fractured" / "IMG0000019.jpg"
    if not image.is_file():
        pytest.skip(f"FracAtlas not found at {DEFAULT_DATA_DIR}")
    _upload(app, "xray.jpg", image.read_bytes(), "image/jpeg")
    assert len(_verdicts(app)) == 1
    assert [element for element in app.warning if element not in _verdict_alerts(app)] == []


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
    assert len(verdicts) == 1 and f"· {name}  \n" in verdicts[0]
    assert f"· {name}" in rendered(_verdict_alerts(app)[0].value)
    unreadable = name.replace(".png", ".jpg")
    app.file_uploader[0].upload(unreadable, b"<html>*not*</html>", "image/jpeg").run()
    errors = [shown(element.value) for element in app.error]
    assert any(error.startswith(f"Could not read {unreadable}: ") and "'<html>*not*</htm'" in error
               for error in errors), errors
    assert any(rendered(element.value).startswith(f"Could not read {unreadable}: ") for element in app.error)


def test_an_html_entity_in_a_name_is_kept_as_typed():
    from ui.widgets import markdown_literal

    assert rendered(markdown_literal("a&copy;b.jpg")) == "a&copy;b.jpg"  # not "a©b.jpg"
    assert rendered(markdown_literal("&#169;&#x41;&amp;&lt;b&gt;")) == "&#169;&#x41;&amp;&lt;b&gt;"


def test_the_pdf_report_states_the_band_verdict_and_threshold_the_page_shows(app, deferred_downloads):
    thresholds = load_thresholds()
    app.session_state[THRESHOLD_KEY] = thresholds["specific"]
    sample = next(sample for sample in load_samples() if sample.fractured)
    _upload(app, "probe.jpg", sample_bytes(sample), "image/jpeg")
    probability = FractureClassifier.load().classify(sample_bytes(sample)).probability_fractured
    pdf = deferred_data(app, "Report (PDF)", deferred_downloads)
    text = pdf_text(pdf)
    assert pdf.startswith(b"%PDF-") and page_count(pdf) == 1
    band = TriageBands.from_thresholds(thresholds).band(probability)
    assert "probe.jpg" in text and BAND_TEXT[band] in text
    assert VERDICT_TEXT[decide(probability, thresholds["specific"])] in text
    assert "Few false alarms" in text and "not a medical device" in text
