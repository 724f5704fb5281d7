"""core.heatmaps.REGISTRY: every heatmap method declared once, with what the pages, the export and
Serve read of it, and a new method needing nothing but its entry."""

import importlib

import numpy as np
import pytest

from core import heatmaps
from core.heatmaps import (FROM_FORWARD_PASS, FROM_GRADCAM_PASS, REGISTRY, SEPARATE_CALL, TRACEABLE_METHODS,
                           HeatmapMethod, finish_maps, method_info)


def test_every_method_declares_a_label_a_cost_and_where_its_map_comes_from():
    for key, method in REGISTRY.items():
        assert method.key == key and method.label and method.cost
        assert method.source in (FROM_FORWARD_PASS, FROM_GRADCAM_PASS, SEPARATE_CALL)
        assert (method.visualiser is not None) == (method.source == SEPARATE_CALL), key


@pytest.mark.parametrize("key", [key for key, method in REGISTRY.items() if method.source == SEPARATE_CALL])
def test_a_separate_method_names_a_tf_keras_vis_class_that_exists(key):
    module, _, name = REGISTRY[key].visualiser.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))


def test_only_the_fracture_map_comes_without_gradients_from_the_verdicts_pass():
    assert [key for key, method in REGISTRY.items() if method.source == FROM_FORWARD_PASS] == ["fracturemap"]
    assert not REGISTRY["fracturemap"].needs_gradients and REGISTRY["gradcam"].needs_gradients
    assert TRACEABLE_METHODS == ("gradcam", "fracturemap")


def test_an_unknown_method_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="occlusion.*gradcam"):
        method_info("occlusion")


def test_one_post_processing_step_resizes_coarse_maps_and_divides_each_by_its_peak():
    coarse = np.array([[[0.0, 2.0], [np.nan, -1.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    maps = finish_maps(coarse, 8)
    assert maps.shape == (2, 8, 8) and maps.dtype == np.float32
    assert maps[0].max() == pytest.approx(1.0) and maps[0].min() == 0.0
    assert not maps[1].any()  # no evidence stays zero
    already = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(finish_maps(already, 8), already / already.max(), rtol=1e-6)


def test_a_method_added_to_the_registry_reaches_the_classify_pages_help(monkeypatch):
    from pages.classify import method_help

    added = HeatmapMethod("occlusion", "Occlusion", "about 3 s", True, False, SEPARATE_CALL, "tf_keras_vis.scorecam.Scorecam")
    monkeypatch.setitem(REGISTRY, "occlusion", added)
    monkeypatch.setitem(heatmaps.METHODS, "occlusion", added.label)
    text = method_help("fracturemap", tuple(REGISTRY))
    for method in REGISTRY.values():
        if method.key != "fracturemap":
            assert f"{method.label} {method.cost}" in text, method.key
