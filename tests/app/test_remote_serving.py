"""The app with ``FRACTURE_SERVE_URL`` pointing at the Ray Serve deployment answers as it does in-process.

The Classify and Batch pages are run twice on the same uploads, through AppTest: against a local
Serve (the deployment with the shipped model, HTTP on 127.0.0.1) and in-process, Streamlit's caches
cleared in between; the verdict text, the JSON report (P to 6 decimals), the heatmap, the overlay
PNG and the batch table must be identical. A server that cannot be reached, named by the
environment or by the secrets file, gives the page a message instead of a traceback.

One Serve application serves the whole module and is shut down after it. The Ray it runs on is the
test session's where one is running (tests/serving), else a local one of 2 CPUs started here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from bench.app_harness import free_port
from core.config import MODELS_DIR, PROJECT_DIR
from core.remote import RemoteClassifier
from core.reports import VERDICT_TEXT
from core.samples import load_samples, sample_bytes
from ui import state
from tests.app.app_pages import page_alone
from tests.app.media import download_data
from tests.app.page_text import shown

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "metadata.json").is_file(),
                                reason=f"no shipped model in {MODELS_DIR}")

CLASSIFY_PAGE = str(PROJECT_DIR / "streamlit_app.py")
BATCH_PAGE = "batch"
TIMEOUT = 120  # an in-process run imports TensorFlow and loads the model
ROUTE_PREFIX = "/fracture"
REPLICA_CPUS = 0.5
UNREADABLE = ("notes.jpg", b"<html>not an x-ray</html>")


@pytest.fixture(scope="module")
def serve_url() -> str:
    """The deployment's base URL, for the whole module."""
    from ray import serve

    from serving._ray import ray_connection
    from serving.deployment import build_app, start

    with ray_connection(num_cpus=2):
        port = free_port()
        start(build_app(replica_cpus=REPLICA_CPUS), host="127.0.0.1", port=port, route_prefix=ROUTE_PREFIX,
              name="fracture-app-tests")
        yield f"http://127.0.0.1:{port}{ROUTE_PREFIX}"
        serve.shutdown()


@pytest.fixture
def setting(monkeypatch):
    """``setting(url)`` points the app at ``url`` (None: in-process) with every Streamlit cache
    emptied, as a freshly started server would begin; the caches are emptied again afterwards."""

    def point_at(url: str | None) -> None:
        if url is None:
            monkeypatch.delenv(state.SERVE_URL_VARIABLE, raising=False)
        else:
            monkeypatch.setenv(state.SERVE_URL_VARIABLE, url)
        st.cache_resource.clear()
        st.cache_data.clear()

    yield point_at
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(scope="module")
def radiographs() -> list[tuple[str, bytes]]:
    """Two shipped sample radiographs, one fractured and one not."""
    samples = load_samples()
    chosen = [next(sample for sample in samples if sample.fractured is label) for label in (True, False)]
    return [(sample.file_name, sample_bytes(sample)) for sample in chosen]


@dataclass(frozen=True)
class ClassifyAnswer:
    verdicts: list[str]
    report: dict
    heatmaps: dict[str, dict]  # by method: the viewer's heatmap layer
    overlays: dict[str, bytes]  # by method: the "Overlay (PNG)" download


def _verdicts(app: AppTest) -> list[str]:
    return [shown(element.value) for element in [*app.success, *app.warning, *app.error]
            if any(words in element.value for words in VERDICT_TEXT.values())]


def _viewer_heatmap(app: AppTest) -> dict:
    """The viewer's heatmap layer as the browser receives it (Plotly's typed array: the float
    values' own bytes, so equal layers are equal maps, bit for bit)."""
    [figure] = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")
                if any(trace["type"] == "image" for trace in json.loads(chart.proto.spec)["data"])]
    [layer] = [trace for trace in figure["data"] if trace["type"] == "heatmap"]
    return layer["z"]


def _classify(upload: tuple[str, bytes], media: dict[str, bytes], methods=("gradcam", "layercam")) -> ClassifyAnswer:
    app = AppTest.from_file(CLASSIFY_PAGE, default_timeout=TIMEOUT).run()
    assert not app.exception
    app.file_uploader[0].upload(*upload, "image/jpeg").run()
    assert not app.exception
    verdicts, report = _verdicts(app), json.loads(download_data(app, "Report (JSON)", media))
    heatmaps, overlays = {}, {}
    for method in methods:
        next(box for box in app.selectbox if box.label == "Heatmap method").set_value(method).run()
        assert not app.exception
        heatmaps[method], overlays[method] = _viewer_heatmap(app), download_data(app, "Overlay (PNG)", media)
    return ClassifyAnswer(verdicts, report, heatmaps, overlays)


def test_the_classify_page_answers_the_same_through_the_server_as_in_process(serve_url, setting, radiographs,
                                                                            media_files):
    decisions = set()
    for upload in radiographs:
        setting(serve_url)
        remote = _classify(upload, media_files)
        setting(None)
        here = _classify(upload, media_files)
        assert remote.verdicts == here.verdicts and len(here.verdicts) == 1 and upload[0] in here.verdicts[0]
        assert remote.report == here.report
        for method in here.heatmaps:  # Grad-CAM from the verdict's pass, Layer-CAM from /explain
            assert remote.heatmaps[method] == here.heatmaps[method], method
            assert remote.overlays[method] == here.overlays[method], method
        decisions.add(here.report["decision"])
    assert decisions == {"fractured", "not_fractured"}  # both verdicts were compared


def test_the_remote_app_really_asks_the_server(serve_url, setting, radiographs):
    setting(serve_url)
    app = AppTest.from_file(CLASSIFY_PAGE, default_timeout=TIMEOUT).run()
    app.file_uploader[0].upload(*radiographs[0], "image/jpeg").run()
    assert not app.exception
    classifier = state.load_classifier()  # the one the page cached
    assert isinstance(classifier, RemoteClassifier) and classifier.url == serve_url


def test_the_batch_page_gives_the_same_table_through_the_server_as_in_process(serve_url, setting, radiographs):
    files = [*radiographs, UNREADABLE]
    tables = []
    for url in (serve_url, None):
        setting(url)
        app = page_alone(BATCH_PAGE, default_timeout=TIMEOUT).run()
        app.file_uploader[0].set_value([(name, data, "image/jpeg") for name, data in files]).run()
        assert not app.exception
        tables.append(app.dataframe[0].value)
    remote, here = tables
    pandas.testing.assert_frame_equal(remote, here)  # thumbnails, P, band, verdict and both checks
    assert list(here["file"]) == [name for name, _ in files]
    assert here["verdict"].iloc[2].startswith("unreadable: expected an image file")


def test_a_server_that_cannot_be_reached_is_a_message_on_the_page_not_a_traceback(setting, radiographs):
    port = free_port()  # nothing listens on it
    setting(f"http://127.0.0.1:{port}")
    app = AppTest.from_file(CLASSIFY_PAGE, default_timeout=TIMEOUT).run()
    assert not app.exception
    [message] = [shown(element.value) for element in app.error]
    assert message.startswith(f"The fracture server cannot answer: `cannot reach the fracture server at "
                              f"http://127.0.0.1:{port}: ")
    assert state.SERVE_URL_VARIABLE in message
    app.file_uploader[0].upload(*radiographs[0], "image/jpeg").run()  # and with an image to classify
    assert not app.exception
    assert any("cannot reach the fracture server" in shown(element.value) for element in app.error)
    assert not _verdicts(app)


def test_a_server_that_goes_away_after_connecting_is_a_message_on_the_page(serve_url, setting, radiographs,
                                                                           monkeypatch):
    from core.remote import RemoteServingError

    setting(serve_url)
    app = AppTest.from_file(CLASSIFY_PAGE, default_timeout=TIMEOUT).run()  # connects, and keeps the client

    def server_gone(self, data, **options):
        raise RemoteServingError(f"cannot reach the fracture server at {serve_url}: connection refused")

    monkeypatch.setattr(RemoteClassifier, "classify", server_gone)
    app.file_uploader[0].upload(*radiographs[0], "image/jpeg").run()
    assert not app.exception
    assert any(shown(element.value).startswith("The fracture server cannot answer: `cannot reach the fracture "
                                                f"server at {serve_url}") for element in app.error)
    assert not _verdicts(app)


def test_the_secrets_file_setting_points_the_app_at_a_server(setting):
    port = free_port()  # nothing listens on it: the message shows which server the page asked
    setting(None)
    app = AppTest.from_file(CLASSIFY_PAGE, default_timeout=TIMEOUT)
    app.secrets[state.SERVE_URL_SECRET] = f"http://127.0.0.1:{port}"
    app.run()
    assert not app.exception
    assert any(f"http://127.0.0.1:{port}" in shown(element.value) for element in app.error)


def test_without_a_setting_the_app_runs_in_process_and_a_missing_secrets_file_says_nothing(setting, capsys):
    files = (PROJECT_DIR / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")
    present = [path for path in files if path.exists()]
    if present:
        pytest.skip(f"a secrets file exists ({present[0]}); this test is about running without one")
    setting(None)
    assert state.serve_url() is None
    assert capsys.readouterr() == ("", "")
