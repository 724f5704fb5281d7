"""The About page through Streamlit's AppTest: for a clinician first (disclaimer, what it is, how to
read it, data and limits), the model card and the retrain commands folded away below."""

import pytest

from core.artifacts import load_held_out, load_metrics, load_thresholds
from core.heldout import describe_costs
from core.triage import TriageBands
from tests.app.app_pages import page_alone

PAGE = "about"


@pytest.fixture(scope="module")
def app():
    app = page_alone(PAGE, default_timeout=120)  # the page asks the model for its default heatmap
    app.run()
    assert not app.exception
    return app


def _text(blocks) -> str:
    return " ".join(block.value for block in blocks)


def test_the_disclaimer_comes_first_and_the_citation_is_kept(app):
    assert [heading.value for heading in app.title] == ["About this model"]
    assert "Not a medical device" in app.warning[0].value
    text = _text(app.markdown)
    assert "Abedeen" in text and "Scientific Data 10, 521" in text and "10.1038/s41597-023-02432-4" in text
    assert "CC BY 4.0" in text


def test_the_first_screen_says_what_it_is_how_to_read_it_and_its_limits(app):
    first_screen = _text(block for block in app.main.markdown if block not in _folded(app))
    thresholds = load_thresholds()
    bands = TriageBands.from_thresholds(thresholds)
    assert f"{load_metrics().split('test').auroc.auroc:.3f}" in first_screen
    assert describe_costs(load_held_out(split="test").at_threshold(thresholds["screening"])) in first_screen
    for words in ("The verdict", "The threshold", "The heatmap", f"{bands.doubt_from:.3f}",
                  f"{bands.fracture_from:.3f}", "Implants", "one data set"):
        assert words in first_screen, words
    assert [heading.value for heading in app.subheader] == ["How to read a result", "Data", "Limits"]


def test_the_model_card_and_retrain_commands_are_folded_away_below(app):
    labels = [expander.label for expander in app.expander]
    assert len(labels) == 2 and labels[0].startswith("Model card") and labels[1] == "How to retrain"
    card, retrain = app.expander
    assert not card.proto.expanded and not retrain.proto.expanded
    assert "## Model card" in _text(card.markdown)  # docs/model-card.md, as a section of the page
    assert not any(line.startswith("# ") for block in app.markdown for line in block.value.splitlines())
    assert "python -m training.train_box --data-dir" in retrain.code[0].value  # the shipped model's trainer


def _folded(app) -> list:
    return [block for expander in app.expander for block in expander.markdown]
