"""Tests for core.remote without a server: what the client learns of the served model's heatmaps
(tests/serving/test_deployment*.py drive a real Serve deployment)."""

import pytest

from core.heatmaps import METHODS
from core.remote import RemoteClassifier, ServedHeatmaps
from tests.box_model_fixture import box_classifier, box_model_dir  # noqa: F401  (fixtures)


def test_a_box_model_serves_its_fracture_map_by_default_among_every_method(box_classifier):
    served = ServedHeatmaps.of(box_classifier)
    assert served == ServedHeatmaps("fracturemap", tuple(METHODS))


def test_a_model_without_a_map_of_its_own_serves_grad_cam_and_never_offers_the_fracture_map(classifier):
    served = ServedHeatmaps.of(classifier)
    assert served.default == "gradcam"
    assert "fracturemap" not in served.methods and "gradcam" in served.methods


def test_the_wire_payload_comes_back_as_it_went(box_classifier):
    served = ServedHeatmaps.of(box_classifier)
    assert ServedHeatmaps.from_payload(served.payload()) == served


def test_a_server_naming_an_unknown_method_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown heatmap method 'cam9000'; valid: gradcam, gradcam"):
        ServedHeatmaps.from_payload({"default": "gradcam", "methods": ["gradcam", "cam9000"]})


def test_the_client_takes_the_served_default_and_methods(box_classifier):
    served = ServedHeatmaps("fracturemap", ("gradcam", "fracturemap"))
    client = RemoteClassifier("http://127.0.0.1:9/fracture/", box_classifier.metadata, served)
    assert client.default_heatmap == "fracturemap"
    assert client.explainer.methods == ("gradcam", "fracturemap")
    assert client.url == "http://127.0.0.1:9/fracture"
