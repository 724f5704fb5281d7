"""The pages follow the model's own default heatmap: a box model's fracture map first (tests/box_model_fixture.py),
Grad-CAM for a model without one, and the heatmap sentence names the method whose hit rate was measured.

The app is pointed at a model with ``ui.state.MODEL_DIR``; the held-out figures it also reads
(probabilities.csv, history.csv, metrics.json) are the shipped model's, copied beside it, with the
pointing game's figures of the method under test.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.config import HISTORY_FILENAME, METRICS_FILENAME, MODELS_DIR, PROBABILITIES_FILENAME, PROJECT_DIR
from core.heatmaps import METHODS
from core.evaluation import PointingFigures
from ui import state
from pages.batch import METHOD_KEY
from ui.widgets import localisation_sentence
from tests.app.app_pages import page_alone
from tests.app.page_text import shown
from tests.box_model_fixture import box_model_dir  # noqa: F401  (fixture)

APP = str(PROJECT_DIR / "streamlit_app.py")
BATCH_PAGE = "batch"
ABOUT_PAGE = "about"
TIMEOUT = 120
FRACTURE_MAP = METHODS["fracturemap"]
POINTING_GAME = {"method": "fracturemap", "split": "test", "n_images": 111, "peak_inside_box": 40}
MEASURED = {"fracturemap": PointingFigures("fracturemap", "test", "v2", n_images=111, peak_inside_box=40)}
FOUND = "its peak fell inside the radiologists' box in 40 (36%) of 111 fractured test images"


def _png_bytes(seed: int = 1) -> bytes:
    import io

    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (300, 240), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _app_model(model_dir: Path, folder: Path, localisation: dict) -> Path:
    """``model_dir`` copied to ``folder`` with the shipped held-out files and ``localisation`` as the
    pointing game of its metrics.json."""
    if not (MODELS_DIR / METRICS_FILENAME).is_file():
        pytest.skip(f"no shipped model in {MODELS_DIR}: the pages' held-out figures come from it")
    folder = Path(shutil.copytree(model_dir, folder, dirs_exist_ok=True))
    for name in (PROBABILITIES_FILENAME, HISTORY_FILENAME):
        shutil.copy(MODELS_DIR / name, folder / name)
    metrics = json.loads((MODELS_DIR / METRICS_FILENAME).read_text())
    figures = {**localisation, "model_version": metrics["model_version"]}  # about the model these figures describe
    (folder / METRICS_FILENAME).write_text(json.dumps({**metrics, "localisation": {"methods": {figures["method"]: figures}}}))
    return folder


@pytest.fixture(scope="module")
def box_app_dir(box_model_dir, tmp_path_factory) -> Path:
    return _app_model(box_model_dir, tmp_path_factory.mktemp("box-app") / "model", POINTING_GAME)


@pytest.fixture(scope="module")
def plain_app_dir(trained_model, tmp_path_factory) -> Path:
    """The tiny trained model of tests/conftest.py: no fracture map, no default in its metadata."""
    return _app_model(trained_model.directory, tmp_path_factory.mktemp("plain-app") / "model",
                      {**POINTING_GAME, "method": "gradcam"})


@pytest.fixture
def point_app_at(monkeypatch):
    """``point_app_at(folder)``: the pages show the model in ``folder``, every cache emptied before and after."""

    def point(folder: Path) -> None:
        monkeypatch.setattr(state, "MODEL_DIR", folder)
        st.cache_resource.clear()
        st.cache_data.clear()

    yield point
    st.cache_resource.clear()
    st.cache_data.clear()


def _classified(page: str) -> AppTest:
    """``page``: the app's script (Classify), or the url path of a page opened alone."""
    app = (AppTest.from_file(page, default_timeout=TIMEOUT) if page == APP
           else page_alone(page, default_timeout=TIMEOUT)).run()
    assert not app.exception
    app.file_uploader[0].set_value(("xray.png", _png_bytes(), "image/png")).run()
    assert not app.exception
    return app


def _method_box(app: AppTest):
    return next(box for box in app.selectbox if box.label == "Heatmap method")


def _heatmap_caption(app: AppTest) -> str:
    return next(caption.value for caption in app.main.caption if "for 'fractured'" in caption.value)


def test_the_sentence_names_the_method_measured_and_its_hit_rate():
    assert localisation_sentence(MEASURED, "fracturemap") == f"How far to trust {FRACTURE_MAP}: {FOUND}."


def test_the_sentence_says_when_its_figure_is_for_another_method():
    assert localisation_sentence(MEASURED, "gradcam") == (
        f"How far to trust it: not measured for Grad-CAM; for {FRACTURE_MAP}, {FOUND}.")


@pytest.mark.parametrize("figures", [{}, {"gradcam": PointingFigures("gradcam", "test", "v2", 0, 0)}])
def test_no_sentence_without_a_measurement(figures):
    assert localisation_sentence(figures, "gradcam") == ""


def test_the_classify_page_starts_on_the_fracture_map_and_says_how_far_it_was_measured(point_app_at, box_app_dir):
    point_app_at(box_app_dir)
    app = _classified(APP)
    box = _method_box(app)
    assert box.value == "fracturemap" and FRACTURE_MAP in box.options
    assert f"{FRACTURE_MAP}, this model's default, comes with the verdict" in box.help
    caption = _heatmap_caption(app)
    assert caption.startswith(f"{FRACTURE_MAP} for 'fractured' (this model's default)")
    assert caption.endswith(f"How far to trust {FRACTURE_MAP}: {FOUND}.") and " only " not in caption


def test_switching_away_from_the_measured_method_says_the_figure_is_for_the_fracture_map(point_app_at,
                                                                                        box_app_dir):
    point_app_at(box_app_dir)
    app = _classified(APP)
    _method_box(app).set_value("gradcam").run()
    assert not app.exception
    caption = _heatmap_caption(app)
    assert caption.startswith("Grad-CAM for 'fractured'") and "(this model's default)" not in caption
    assert caption.endswith(f"not measured for Grad-CAM; for {FRACTURE_MAP}, {FOUND}.")


def test_a_model_without_a_map_of_its_own_offers_no_fracture_map_and_starts_on_grad_cam(point_app_at,
                                                                                       plain_app_dir):
    point_app_at(plain_app_dir)
    app = _classified(APP)
    box = _method_box(app)
    assert box.value == "gradcam" and FRACTURE_MAP not in box.options
    assert box.options == [METHODS[method] for method in METHODS if method != "fracturemap"]
    assert _heatmap_caption(app).startswith("Grad-CAM for 'fractured' (this model's default)")


def test_the_batch_page_shows_the_fracture_map_first(point_app_at, box_app_dir):
    point_app_at(box_app_dir)
    app = _classified(BATCH_PAGE)
    box = app.selectbox(key=METHOD_KEY)
    assert box.value == "fracturemap" and FRACTURE_MAP in box.options
    assert shown(app.image[1].proto.imgs[0].caption).startswith(f"{FRACTURE_MAP} for 'fractured'")


def test_the_about_page_names_the_default_heatmap_and_its_measured_hit_rate(point_app_at, box_app_dir):
    point_app_at(box_app_dir)
    app = page_alone(ABOUT_PAGE, default_timeout=TIMEOUT).run()
    assert not app.exception
    [heatmap] = [block.value for block in app.markdown if block.value.startswith("**The heatmap**")]
    assert heatmap.endswith(f"This model's default heatmap is {FRACTURE_MAP}. How far to trust {FRACTURE_MAP}: "
                            f"{FOUND}.")
