"""`serving.deployment` serving a model without a fracture map of its own (the tiny CNN that
tests/conftest.py trains): it answers with Grad-CAM, and refuses the fracture map with a 400 that
names the methods it can draw. The shipped model draws every method, so only such a model can
show the refusal on a live server.
"""

from __future__ import annotations

import pytest

from bench.app_harness import free_port
from tests.serving.http_client import get_json, post
from tests.threads import synthetic_image

ROUTE_PREFIX = "/cnn"
REPLICA_CPUS = 0.5


@pytest.fixture(scope="module")
def cnn_server(local_ray, trained_model) -> str:
    """The deployment of the tiny trained CNN, one replica; its base URL."""
    from ray import serve

    from serving.deployment import build_app, start

    assert trained_model.returncode == 0, "training the shared tiny model failed"
    port = free_port()
    start(build_app(trained_model.directory, replica_cpus=REPLICA_CPUS), host="127.0.0.1", port=port,
          route_prefix=ROUTE_PREFIX, name="fracture-cnn-tests")
    yield f"http://127.0.0.1:{port}{ROUTE_PREFIX}"
    serve.shutdown()


def test_a_method_the_model_cannot_draw_is_400_naming_those_it_can(cnn_server, classifier):
    assert "fracturemap" not in classifier.explainer.methods
    answer = post(f"{cnn_server}/explain?method=fracturemap", synthetic_image(0))
    assert answer.status == 400
    assert answer.json == {"error": "this model cannot draw heatmap 'fracturemap'; valid: "
                                    + ", ".join(classifier.explainer.methods)}


def test_heatmaps_names_grad_cam_as_the_default_of_a_model_without_its_own_map(cnn_server, classifier):
    assert get_json(f"{cnn_server}/heatmaps") == {"default": "gradcam", "methods": list(classifier.explainer.methods)}
