"""Every case of the bad-input corpus (tests/corpus.py) uploaded to the Classify page, and a mixed batch.

A readable file must get a verdict and two images; an unreadable one a message that names the file
and says what is wrong. Never an exception. AppTest bypasses the server's upload limit, so the
51 MB case shows what core's own byte limit says; tests/e2e/test_browser.py checks the browser's.
"""

import tomllib

import pytest
from streamlit.testing.v1 import AppTest

from core.config import PROJECT_DIR
from core.samples import load_samples
from core.imaging import MAX_FILE_BYTES
from pages.batch import TABLE_KEY
from tests.app.app_pages import page_alone
from tests.app.page_text import shown
from tests.corpus import CASES, Reads, Rejected

APP = str(PROJECT_DIR / "streamlit_app.py")
BATCH = "batch"
TIMEOUT = 120  # the first run in the process imports TensorFlow and loads the model


def _messages(app: AppTest) -> list[str]:
    return [shown(element.value) for element in [*app.success, *app.error, *app.warning, *app.info]]


def _viewers(app) -> int:
    """The image viewers on the page: Plotly charts that draw a picture (the band strips draw none)."""
    return sum('"type":"image"' in chart.proto.spec for chart in app.get("plotly_chart"))


@pytest.mark.slow  # the whole hostile corpus (80-odd files), each a fresh AppTest run of Classify
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_upload_on_the_classify_page(case):
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].upload(case.file_name, case.make(), case.mime).run()
    assert not app.exception
    messages = _messages(app)
    if isinstance(case.expected, Reads):
        verdicts = [text for text in messages if case.file_name in text and "P(fractured)" in text]
        assert len(verdicts) == 1, messages
        assert ("Fracture suspected" in verdicts[0]) != ("No fracture detected" in verdicts[0])
        assert _viewers(app) == 1  # the X-ray and its heatmap
        assert len(app.image) == len(load_samples())  # only the sample gallery's thumbnails
        assert not any("Could not read" in text for text in messages)
    else:
        errors = [shown(element.value) for element in app.error]
        assert len(errors) == 1, errors
        assert errors[0].startswith(f"Could not read {case.file_name}: ")
        assert case.expected.message in errors[0]
        assert _viewers(app) == 0 and not any("P(fractured)" in text for text in messages)


def _case(name: str):
    return next(case for case in CASES if case.name == name)


MIXED = ["html-as-png", "dicom", "empty", "exif-rotate-90", "zip-as-jpg", "colour-photo", "png-cut-50", "png-16bit",
         "png-bomb-900mp", "dicom-no-pixels", "20x20000", "dicom-jpeg-ls", "over-upload-limit"]


@pytest.mark.slow  # 13 files on the Batch page in one AppTest: close to a minute on a busy machine
def test_a_mixed_batch_gives_rows_for_good_files_and_messages_for_bad_ones():
    chosen = [_case(name) for name in MIXED]
    good = [case.file_name for case in chosen if isinstance(case.expected, Reads)]
    assert len(set(good)) == len(good) == 5 and len(chosen) - len(good) == 8
    app = page_alone(BATCH, default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].set_value([(case.file_name, case.make(), case.mime) for case in chosen]).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["file"]) == [case.file_name for case in chosen]
    for case, (_, row) in zip(chosen, table.iterrows()):
        if isinstance(case.expected, Rejected):
            assert row["verdict"].startswith("unreadable: ") and case.expected.message in row["verdict"], case.name
            assert row["P(fractured)"] is None or row["P(fractured)"] != row["P(fractured)"]  # None or NaN
        else:
            assert 0.0 <= row["P(fractured)"] <= 1.0, case.name
            assert row["verdict"] in ("Fracture suspected", "No fracture detected"), case.name
    assert any(f"{len(chosen) - len(good)} unreadable" in element.value for element in app.markdown)
    for position, case in enumerate(chosen):  # a click on each row: a heatmap for a readable file only
        app.session_state[TABLE_KEY] = {"selection": {"rows": [position], "columns": [], "cells": []}}
        app.run()
        assert not app.exception, case.name
        assert len(app.image) == (2 if isinstance(case.expected, Reads) else 0), case.name


def test_the_upload_limit_is_the_one_core_applies():
    """Streamlit refuses bigger uploads in the browser (tests/e2e); core refuses them for every other caller."""
    config = tomllib.loads((PROJECT_DIR / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 50
    assert MAX_FILE_BYTES == config["server"]["maxUploadSize"] * 2**20  # Streamlit's MB is 2**20 bytes
    over = _case("over-upload-limit")
    assert len(over.make()) > MAX_FILE_BYTES and over.expected.message.endswith("the limit is 50.0 MB")
