"""The sample gallery (ui.gallery) through Streamlit's AppTest: alone, and on the Classify page."""

import io

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.classifier import FractureClassifier
from core.config import PROJECT_DIR
from core.reports import VERDICT_TEXT
from core.samples import load_samples, sample_bytes
from core.thresholds import decide
from ui import gallery
from ui.state import THRESHOLD_KEY
from tests.app.media import media_id
from tests.app.page_text import shown

APP = str(PROJECT_DIR / "streamlit_app.py")
TIMEOUT = 120  # the Classify page imports TensorFlow and loads the model on its first run
SAMPLES = load_samples()


def gallery_script():
    """The gallery on the Classify page's list of uploads, and that list as text."""
    import streamlit as st

    from ui import state
    from ui.gallery import gallery_ui

    gallery_ui("classify")
    for upload in state.uploads("classify"):
        st.text(f"{upload.key}|{upload.name}|{upload.data.hex()}")


@pytest.fixture
def fresh_caches():
    st.cache_data.clear()  # the gallery's caches live in the process, across tests
    yield
    st.cache_data.clear()


@pytest.fixture
def app(fresh_caches):
    app = AppTest.from_function(gallery_script, default_timeout=60)
    app.run()
    assert not app.exception
    return app


def _uploads(app: AppTest) -> list[tuple[str, str, bytes]]:
    return [(key, name, bytes.fromhex(data)) for key, name, data in (text.value.split("|") for text in app.text)]


def _sample_button(app: AppTest, sample):
    return app.button(key=f"classify-sample:{sample.file_name}")


def test_gallery_is_open_without_uploads_and_shows_each_sample_with_its_button(app):
    assert app.expander[0].label == gallery.GALLERY_LABEL and app.expander[0].proto.expanded
    assert [image.proto.imgs[0].alt for image in app.image] == [sample.caption for sample in SAMPLES]
    assert [button.label for button in app.button] == [sample.caption for sample in SAMPLES]
    assert not any(button.disabled for button in app.button)
    assert "CC BY 4.0" in app.caption[0].value


def test_clicking_a_sample_adds_its_bytes_to_the_pages_uploads(app):
    knee, wrist = SAMPLES[-1], SAMPLES[0]
    _sample_button(app, knee).click().run()
    assert not app.exception
    assert _uploads(app) == [(f"sample:{knee.file_name}", knee.name, sample_bytes(knee))]
    assert _sample_button(app, knee).disabled and not _sample_button(app, wrist).disabled
    assert not app.expander[0].proto.expanded  # out of the way once there is a result to see
    _sample_button(app, wrist).click().run()
    assert [key for key, _, _ in _uploads(app)] == [f"sample:{knee.file_name}", f"sample:{wrist.file_name}"]


def test_thumbnails_are_small_and_encoded_once(fresh_caches, media_files, monkeypatch):
    calls = []
    original = gallery.sample_thumbnail
    monkeypatch.setattr(gallery, "sample_thumbnail", lambda *args: calls.append(args) or original(*args))
    app = AppTest.from_function(gallery_script, default_timeout=60)
    app.run()
    app.run()
    assert not app.exception and len(calls) == len(SAMPLES)
    for image in app.image:
        with Image.open(io.BytesIO(media_files[media_id(image.proto.imgs[0].url)])) as thumbnail:
            assert thumbnail.size == (gallery.THUMBNAIL_PX, gallery.THUMBNAIL_PX)


def test_a_broken_manifest_shows_a_warning_instead_of_the_samples(fresh_caches, monkeypatch, tmp_path):
    (tmp_path / "samples.json").write_text("{broken", encoding="utf-8")
    monkeypatch.setattr(gallery, "load_samples", lambda: load_samples(tmp_path))
    app = AppTest.from_function(gallery_script, default_timeout=60)
    app.run()
    assert not app.exception and not app.button and not app.image
    assert "The sample X-rays are unavailable" in shown(app.warning[0].value)
    assert "is not readable JSON" in shown(app.warning[0].value)


# --- on the Classify page ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier() -> FractureClassifier:
    """The shipped model, loaded apart from the page's cache: the reference answer."""
    return FractureClassifier.load()


def test_a_sample_clicked_on_the_classify_page_gets_its_verdict(classifier):
    page = AppTest.from_file(APP, default_timeout=TIMEOUT)
    page.run()
    assert not page.exception
    threshold = page.session_state[THRESHOLD_KEY]
    for sample in (SAMPLES[0], SAMPLES[-1]):  # a wrist fracture and a normal knee
        page.button(key=f"classify-sample:{sample.file_name}").click().run()
        assert not page.exception
        alerts = [shown(alert.value) for alert in [*page.error, *page.warning, *page.success, *page.info]]
        verdict = next(text for text in alerts if sample.name in text)
        expected = decide(classifier.classify(sample_bytes(sample)).probability_fractured, threshold)
        assert f"**{VERDICT_TEXT[expected]}** at your threshold" in verdict
