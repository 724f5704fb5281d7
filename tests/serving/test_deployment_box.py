"""`serving.deployment` serving a model with a fracture map of its own (tests/box_model_fixture.py), on
the shared local Ray: its answers, the app's client and the warm-up follow the model's default heatmap.

One Serve application per model, shut down after it. The tiny box model is built here, so these
tests run wherever Ray does.
"""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from bench.app_harness import free_port
from core.remote import RemoteClassifier, model_input_png
from core.scoring import ImageBytes, score_files
from tests.box_model_fixture import box_classifier, box_model_dir  # noqa: F401  (fixtures)
from tests.threads import synthetic_image

ROUTE_PREFIX = "/box"
REPLICA_CPUS = 0.5
TIMEOUT_S = 60


def post(url: str, body: bytes) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=TIMEOUT_S) as answer:
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def box_server(local_ray, box_model_dir) -> str:
    """The deployment of the box model, one replica; its base URL."""
    from ray import serve

    from serving.deployment import build_app, start

    port = free_port()
    start(build_app(box_model_dir, replica_cpus=REPLICA_CPUS), host="127.0.0.1", port=port,
          route_prefix=ROUTE_PREFIX, name="fracture-box-tests")
    yield f"http://127.0.0.1:{port}{ROUTE_PREFIX}"
    serve.shutdown()


@pytest.fixture(scope="module")
def images() -> list[ImageBytes]:
    return [ImageBytes(f"generated-{index}", synthetic_image(index)) for index in range(3)]


def test_the_client_learns_the_fracture_map_is_the_default_and_gets_it_with_the_verdict(box_server, box_classifier,
                                                                                      images):
    remote = RemoteClassifier.connect(box_server, expected_version=box_classifier.version)
    assert remote.default_heatmap == "fracturemap" and "fracturemap" in remote.explainer.methods
    for image in images:
        here = box_classifier.classify(image.data, heatmap="fracturemap")
        there = remote.classify(image.data, heatmap=remote.default_heatmap)
        assert there.heatmap_method == "fracturemap" and there.probability_fractured == here.probability_fractured
        assert np.array_equal(there.heatmap, here.heatmap)


def test_predict_answers_with_the_peak_of_the_fracture_map(box_server, box_classifier, images):
    threshold = box_classifier.thresholds["screening"]
    expected = {file.path: file.record(threshold) for file in score_files(box_classifier, images)}
    for image in images:
        answer = post(f"{box_server}/predict?name={image.name}&threshold=screening", image.data)
        assert answer == expected[image.name] and "heatmap_peak" in answer


def test_explain_draws_the_fracture_map_unless_told_otherwise(box_server, box_classifier, images):
    model_input = box_classifier.classify(images[0].data).model_input
    by_default = post(f"{box_server}/explain", model_input_png(model_input))
    assert by_default["method"] == "fracturemap"
    grad_cam = post(f"{box_server}/explain?method=gradcam", model_input_png(model_input))
    assert grad_cam["method"] == "gradcam"
