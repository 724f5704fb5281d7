"""The About page through Streamlit's AppTest: disclaimer first, attribution, retraining, model card."""

from streamlit.testing.v1 import AppTest

from core.config import PROJECT_DIR

PAGE = str(PROJECT_DIR / "pages" / "about.py")


def test_about_page_shows_the_disclaimer_citation_and_model_card():
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception
    assert "Not a medical device" in app.warning[0].value
    text = " ".join(block.value for block in app.markdown)
    assert "Abedeen" in text and "Scientific Data 10, 521" in text and "10.1038/s41597-023-02432-4" in text
    assert "CC BY 4.0" in text
    assert "## Model card" in text  # docs/model-card.md rendered, as a section of the page
    assert [heading.value for heading in app.title] == ["About this model"]
    assert not any(line.startswith("# ") for block in app.markdown for line in block.value.splitlines())
    assert "python -m training.train" in app.code[0].value
