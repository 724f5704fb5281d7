"""Every page, rendered as a user reaches it, shows a figure wherever a figure belongs: no "?",
"None" or "nan" standing in for a number the model's files did not give (the Performance page
once said "the kept weights are those of epoch ?")."""

import re

import numpy as np
import pytest

from core.config import PROJECT_DIR
from tests.app.app_pages import PAGES, open_page, whole_app

TIMEOUT = 180
SAMPLE = PROJECT_DIR / "assets" / "samples" / "IMG0001063.jpg"  # a FracAtlas test radiograph (CC BY 4.0)
# A "?" that stands alone ("epoch ?"), not one ending a question ("Why not accuracy?").
PLACEHOLDERS = re.compile(r"(?:^|[\s(])\?(?:$|[\s.,;:)])|\bNone\b|\bnan\b|\bNaN\b|\binf\b")


def shown_text(app) -> list[str]:
    """Every piece of text the page shows: markdown, captions, headings, alerts, metrics and the
    cells of every table."""
    texts = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning", "error",
                 "success", "exception"):
        texts += [str(element.value) for element in app.get(kind)]
    for metric in app.get("metric"):
        texts += [str(metric.label), str(metric.value)]
    for frame in app.get("dataframe"):
        table = frame.value
        texts += [str(column) for column in table.columns]
        texts += [str(cell) for cell in np.ravel(table.to_numpy(dtype=object))]
    return texts


def placeholders(app) -> list[str]:
    return [text for text in shown_text(app) if PLACEHOLDERS.search(text)]


@pytest.fixture
def app():
    app = whole_app(default_timeout=TIMEOUT)
    app.run()
    assert not app.exception
    return app


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_a_placeholder_where_a_figure_belongs(app, page):
    open_page(app, page).run()
    assert not app.exception
    assert shown_text(app), f"/{page} showed no text at all"
    assert not placeholders(app), placeholders(app)


@pytest.mark.parametrize("page", ["classify", "batch"])
def test_a_page_with_a_result_on_it_shows_no_placeholder(app, page):
    open_page(app, page).run()
    app.file_uploader[0].upload(SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg").run()
    assert not app.exception
    assert any("P(fractured)" in text or "fracture" in text.lower() for text in shown_text(app))
    assert not placeholders(app), placeholders(app)


def test_the_performance_page_validates_both_splits_without_a_placeholder(app):
    open_page(app, "performance").run()
    app.radio[0].set_value("val").run()
    assert not app.exception
    assert not placeholders(app), placeholders(app)


def test_the_placeholder_pattern_finds_what_it_is_for():
    assert PLACEHOLDERS.search("The kept weights are those of epoch ?, the best val AUROC.")
    assert PLACEHOLDERS.search("T = nan") and PLACEHOLDERS.search("specificity None")
    assert not PLACEHOLDERS.search("Why not accuracy? Fractures are the minority.")
    assert not PLACEHOLDERS.search("sensitivity 86.5% (96 of 111)")
