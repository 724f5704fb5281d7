"""A fracture server is untrusted input (issue 25, item 7): every answer RemoteClassifier takes is
checked against the wire format's ranges, shapes and sizes; a slow, endless or redirecting server
is cut off with a clear RemoteServingError, never a hang, a NaN verdict or a traceback.

The hostile servers are the standard library's, on loopback, in this process."""

import copy
import http.server
import json
import threading
import time

import numpy as np
import pytest

from core.http_json import HttpJsonError, request_json
from core.remote import RemoteClassifier, RemoteServingError, ServedHeatmaps, encode_array, result_payload
from core.classifier import ImageResult
from core.radiograph_check import RadiographCheck
from tests.conftest import synthetic_xray, write_png

SIZE = 32


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers each path as the test's ``behaviour`` says."""

    behaviour = {}

    def log_message(self, *args):  # keep test output clean
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        action = self.behaviour.get(self.path.split("?")[0], ("json", {}))
        kind, value = action
        if kind == "json":
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind == "endless":
            self.send_response(200)
            self.end_headers()
            chunk = b"[" + b"1," * 32768
            try:
                for _ in range(10_000):  # 640 MB at most, far beyond the cap; the client hangs up first
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif kind == "trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(value)
            except OSError:
                pass
        elif kind == "trickle headers":
            try:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(value)
            except OSError:
                pass
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    do_GET = do_POST = _answer


@pytest.fixture
def hostile():
    """``(url, behaviour)``: a loopback server whose answers the test sets per path."""
    behaviour = {}
    handler = type("TestHandler", (Handler,), {"behaviour": behaviour})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", behaviour
    server.shutdown()
    server.server_close()


@pytest.fixture
def upload(tmp_path):
    return write_png(tmp_path / "xray.png", synthetic_xray(True, 3)).read_bytes()


def _good_result(image_shape) -> dict:
    result = ImageResult(0.25, RadiographCheck(0.01, 1.0, 2.0, 0.9, 0.5), np.zeros((SIZE, SIZE, 1), np.uint8),
                         np.zeros(image_shape, np.float32), image_shape, np.full((SIZE, SIZE), 0.5, np.float32),
                         "gradcam")
    return result_payload(result)


def _client(url: str, classifier) -> RemoteClassifier:
    metadata = {**classifier.metadata.raw, "preprocessing": {"image_size": SIZE, "aspect": "pad", "contrast": "none"}}
    return RemoteClassifier(url, metadata, ServedHeatmaps("gradcam", ("gradcam",)), timeout_s=3.0)


def test_a_well_formed_answer_is_taken(hostile, upload, classifier):
    url, behaviour = hostile
    behaviour["/result"] = ("json", _good_result((48, 48)))
    result = _client(url, classifier).classify(upload, heatmap="gradcam")
    assert result.probability_fractured == 0.25 and result.heatmap.shape == (SIZE, SIZE)


def _broken(change) -> dict:
    payload = _good_result((48, 48))
    change(payload)
    return payload


BROKEN_ANSWERS = {
    "a NaN probability": lambda p: p.update(probability_fractured=float("nan")),
    "P = 5": lambda p: p.update(probability_fractured=5),
    "P = -1": lambda p: p.update(probability_fractured=-1.0),
    "P as text": lambda p: p.update(probability_fractured="0.2"),
    "a missing key": lambda p: p.pop("radiograph_check"),
    "an unexpected key": lambda p: p.update(extra=1),
    "a heatmap of another shape": lambda p: p.update(heatmap=encode_array(np.zeros((8, 8), np.float32))),
    "an empty heatmap": lambda p: p.update(heatmap=encode_array(np.zeros((0, 0), np.float32))),
    "a heatmap above 1": lambda p: p.update(heatmap=encode_array(np.full((SIZE, SIZE), 7.0, np.float32))),
    "a heatmap shape that overflows": lambda p: p["heatmap"].update(shape=[2**62, 2**62]),
    "bytes that do not fill the shape": lambda p: p["model_input"].update(data="AAAA"),
    "data that is not base64": lambda p: p["model_input"].update(data="not base64!"),
    "a model input of another dtype": lambda p: p.update(model_input=encode_array(np.zeros((SIZE, SIZE, 1), np.float32))),
    "an infinite distance": lambda p: p["radiograph_check"].update(distance=float("inf")),
    "a check with a field too many": lambda p: p["radiograph_check"].update(verdict="fine"),
    "an unknown heatmap method": lambda p: p.update(heatmap_method="cam9000"),
    "an answer that is a list": None,
}


@pytest.mark.parametrize("case", BROKEN_ANSWERS)
def test_an_invalid_answer_is_a_serving_error_never_a_result(hostile, upload, classifier, case):
    url, behaviour = hostile
    change = BROKEN_ANSWERS[case]
    behaviour["/result"] = ("json", [1, 2] if change is None else _broken(change))
    with pytest.raises(RemoteServingError, match="sent an invalid answer to /result"):
        _client(url, classifier).classify(upload, heatmap="gradcam")


def test_an_invalid_explain_answer_is_a_serving_error(hostile, classifier):
    url, behaviour = hostile
    behaviour["/explain"] = ("json", {"method": "gradcam", "heatmap": encode_array(np.full((SIZE, SIZE), np.nan, np.float32))})
    with pytest.raises(RemoteServingError, match="invalid answer to /explain"):
        _client(url, classifier).explainer.explain(np.zeros((1, SIZE, SIZE, 1), np.uint8), "gradcam")


def test_an_endless_answer_is_cut_off_at_the_cap(hostile):
    url, behaviour = hostile
    behaviour["/metadata"] = ("endless", None)
    started = time.monotonic()
    with pytest.raises(HttpJsonError, match="sent more than 1,048,576 bytes"):
        request_json(url + "/metadata", None, 60.0, max_bytes=2**20)
    assert time.monotonic() - started < 30


def test_a_server_that_trickles_is_cut_off_at_the_whole_request_deadline(hostile):
    url, behaviour = hostile
    behaviour["/metadata"] = ("trickle", 0.2)  # a byte every 0.2 s: each read is quick, the whole is not
    started = time.monotonic()
    with pytest.raises(HttpJsonError, match="did not answer within 1.5 s"):
        request_json(url + "/metadata", None, 1.5)
    assert time.monotonic() - started < 15  # the deadline, not 1000 bytes × 0.2 s


def test_a_server_that_trickles_its_headers_is_cut_off_too(hostile):
    url, behaviour = hostile
    behaviour["/metadata"] = ("trickle headers", 0.1)
    started = time.monotonic()
    with pytest.raises(HttpJsonError, match="did not answer within 1.5 s"):
        request_json(url + "/metadata", None, 1.5)
    assert time.monotonic() - started < 15


def test_a_redirect_is_never_followed(hostile, classifier):
    url, behaviour = hostile
    behaviour["/metadata"] = ("redirect", "http://example.invalid/metadata")
    with pytest.raises(RemoteServingError, match=r"redirected \(HTTP 302\); redirects are not followed"):
        RemoteClassifier.connect(url, timeout_s=5.0)


def test_metadata_with_a_mistyped_field_refuses_the_connection(hostile, classifier):
    url, behaviour = hostile
    behaviour["/metadata"] = ("json", {**copy.deepcopy(dict(classifier.metadata.raw)), "temperature": "hot"})
    behaviour["/heatmaps"] = ("json", {"default": "gradcam", "methods": ["gradcam"]})
    with pytest.raises(ValueError, match="field 'temperature' must be a finite number"):
        RemoteClassifier.connect(url, timeout_s=5.0)


def test_heatmaps_whose_default_is_not_offered_are_refused():
    with pytest.raises(ValueError, match="not among its methods"):
        ServedHeatmaps.from_payload({"default": "fracturemap", "methods": ["gradcam"]})


def test_a_credential_in_the_url_never_reaches_an_error_message(classifier):
    client = RemoteClassifier("http://user:secret@127.0.0.1:9", classifier.metadata, ServedHeatmaps("gradcam", ("gradcam",)),
                              timeout_s=2.0)
    with pytest.raises(RemoteServingError) as error:
        client.post_json("/result", b"x")
    assert "secret" not in str(error.value) and "127.0.0.1:9" in str(error.value)
