"""`serving.deployment` on a local Serve (the shared 2-CPU Ray, HTTP on 127.0.0.1): the CLI's JSON and
overlay for the same bytes, batches formed from concurrent requests, the errors a client gets, and the
full result and other heatmaps that :class:`core.remote.RemoteClassifier` rebuilds the app's answer from.

One Serve application serves the whole module and is shut down after it, so that the archive tests
get their CPUs back. The images are the shipped sample radiographs (``assets/samples``) and generated
ones: the tests need the shipped model, and are skipped, saying so, without it.
"""

from __future__ import annotations

import re

import contextlib
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bench.app_harness import free_port
from core.artifacts import read_metadata_json
from core.config import MODELS_DIR
from core.imaging import MAX_FILE_BYTES, ImageReadError, decode_image
from core.predict import main as predict_main
from core.remote import RemoteClassifier, RemoteServingError
from core.samples import SAMPLES_DIR, load_samples
from core.scoring import ImageBytes, score_files
from tests.serving.http_client import TIMEOUT_S, get_json, post
from tests.threads import synthetic_image

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "metadata.json").is_file(),
                                reason=f"no shipped model in {MODELS_DIR}")

ROUTE_PREFIX = "/fracture"
REPLICA_CPUS = 0.5  # beside the archive tests' actors on the 2-CPU test Ray
CONCURRENT_REQUESTS = 12


@pytest.fixture(scope="module")
def server(local_ray) -> str:
    """The deployment with the shipped model, one replica; its base URL."""
    from ray import serve

    from serving.deployment import build_app, start

    port = free_port()
    start(build_app(replica_cpus=REPLICA_CPUS), host="127.0.0.1", port=port, route_prefix=ROUTE_PREFIX,
          name="fracture-deployment-tests")
    yield f"http://127.0.0.1:{port}{ROUTE_PREFIX}"
    serve.shutdown()


@pytest.fixture(scope="module")
def sample_paths() -> list[Path]:
    return [SAMPLES_DIR / sample.file_name for sample in load_samples()]


@pytest.fixture(scope="module")
def images(sample_paths) -> list[ImageBytes]:
    """Real radiographs (JPEG) and generated images (PNG and JPEG, of other sizes)."""
    return ([ImageBytes(path.name, path.read_bytes()) for path in sample_paths]
            + [ImageBytes(f"generated-{index}", synthetic_image(index)) for index in range(4)])


@pytest.fixture(scope="module")
def classifier():
    from core.classifier import FractureClassifier

    return FractureClassifier.load()


@pytest.fixture(scope="module")
def expected_records(classifier, images) -> dict[str, dict]:
    """``core.scoring``'s record of each image, at the screening threshold, by name."""
    threshold = classifier.thresholds["screening"]
    return {scored.path: scored.record(threshold) for scored in score_files(classifier, images)}


def test_predict_answers_core_scorings_record_for_the_same_bytes(server, images, expected_records):
    for image in images:
        answer = post(f"{server}/predict?name={image.name}&threshold=screening", image.data)
        assert answer.status == 200 and answer.content_type == "application/json"
        assert answer.json == expected_records[image.name]
    decisions = {record["decision"] for record in expected_records.values()}
    assert decisions == {"fractured", "not_fractured"}  # both verdicts occur: the set is not one-sided


def test_the_threshold_is_taken_as_a_number_or_a_preset_and_names_the_upload_by_default(server, images,
                                                                                       classifier):
    image = images[0]
    by_number = post(f"{server}/predict?threshold=0.5", image.data).json
    by_default = post(f"{server}/predict", image.data).json
    assert by_number["path"] == by_default["path"] == "upload"
    assert by_number["threshold"] == 0.5
    assert by_default["threshold"] == round(classifier.thresholds["balanced"], 6)  # the CLI's default preset


def test_the_overlay_png_is_byte_for_byte_the_clis_heatmap_dir_file(server, sample_paths, tmp_path, classifier):
    with contextlib.redirect_stdout(io.StringIO()):
        predict_main([*map(str, sample_paths), "--json", "--heatmap-dir", str(tmp_path)])
    for path in sample_paths:
        answer = post(f"{server}/predict?overlay=png&name={path.name}", path.read_bytes())
        assert answer.status == 200 and answer.content_type == "image/png"
        overlay = tmp_path / f"{path.stem}_{classifier.default_heatmap}.png"  # the CLI names it after the method
        assert answer.body == overlay.read_bytes(), path.name


def test_concurrent_requests_are_scored_in_shared_batches_each_getting_its_own_answer(server, images,
                                                                                     expected_records):
    before = get_json(f"{server}/stats")
    requests = [images[index % len(images)] for index in range(CONCURRENT_REQUESTS)]
    barrier = threading.Barrier(CONCURRENT_REQUESTS, timeout=TIMEOUT_S)

    def send(image: ImageBytes) -> dict:
        barrier.wait()  # all at once
        return post(f"{server}/predict?name={image.name}&threshold=screening", image.data).json

    with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
        answers = list(pool.map(send, requests))
    assert answers == [expected_records[image.name] for image in requests]
    after = get_json(f"{server}/stats")
    assert after["images"] - before["images"] == CONCURRENT_REQUESTS
    assert after["batches"] - before["batches"] < CONCURRENT_REQUESTS  # some requests shared a pass
    assert after["largest_batch"] > 1


@pytest.mark.parametrize("threshold", ["bogus", "1.5", "nan"])
def test_a_bad_threshold_is_400_with_a_message_naming_the_valid_ones(server, images, threshold):
    answer = post(f"{server}/predict?threshold={threshold}", images[0].data)
    assert answer.status == 400
    assert "screening" in answer.json["error"] or "[0, 1]" in answer.json["error"]


def test_an_unknown_overlay_format_or_heatmap_method_is_400(server, images):
    assert post(f"{server}/predict?overlay=jpeg", images[0].data).json == {
        "error": "unknown overlay format 'jpeg'; valid: png"}
    answer = post(f"{server}/explain?method=gradcamm", images[0].data)
    assert answer.status == 400 and "valid: gradcam, gradcam++" in answer.json["error"]


@pytest.mark.parametrize("body", [b"not an image", b"\xff\xd8\xff\xe0 cut short", b""])
def test_an_unreadable_body_is_422_with_the_readers_own_message(server, body):
    with pytest.raises(ImageReadError) as reader:
        decode_image(body)
    answer = post(f"{server}/predict?name=scan.jpg", body)
    assert answer.status == 422
    assert answer.json == {"path": "scan.jpg", "error": str(reader.value)}  # the CLI's record of it
    assert post(f"{server}/result", body).json == {"error": str(reader.value)}


def test_a_body_over_the_upload_cap_is_413(server):
    answer = post(f"{server}/predict", bytes(MAX_FILE_BYTES + 1))
    assert answer.status == 413
    assert f"the limit is 50.0 MB ({MAX_FILE_BYTES:,} bytes)" in answer.json["error"]


def test_metadata_is_the_shipped_models(server):
    assert get_json(f"{server}/metadata") == read_metadata_json()


def test_heatmaps_names_the_served_models_default_and_every_method_it_draws(server, classifier):
    assert get_json(f"{server}/heatmaps") == {"default": classifier.default_heatmap,
                                              "methods": list(classifier.explainer.methods)}
    remote = RemoteClassifier.connect(server)
    assert (remote.default_heatmap, remote.explainer.methods) == (classifier.default_heatmap,
                                                                  classifier.explainer.methods)


def test_explain_without_a_method_draws_the_models_default(server, classifier, images):
    from core.remote import model_input_png

    model_input = classifier.classify(images[0].data).model_input
    answer = post(f"{server}/explain", model_input_png(model_input))
    assert answer.status == 200 and answer.json["method"] == classifier.default_heatmap


def test_the_remote_classifier_rebuilds_the_in_process_result_exactly(server, classifier, images):
    remote = RemoteClassifier.connect(server, expected_version=classifier.version)
    assert (remote.version, remote.preprocess_config, remote.thresholds) == (
        classifier.version, classifier.preprocess_config, classifier.thresholds)
    method = classifier.default_heatmap  # the one the server's /result carries from its own pass
    for image in images[:3]:
        here, there = classifier.classify(image.data, heatmap=method), remote.classify(image.data, heatmap=method)
        assert there.probability_fractured == here.probability_fractured
        assert there.radiograph_check == here.radiograph_check
        assert there.source_shape == here.source_shape and there.heatmap_method == method
        for name in ("model_input", "image", "heatmap"):
            assert getattr(there, name).dtype == getattr(here, name).dtype
            assert np.array_equal(getattr(there, name), getattr(here, name)), name


@pytest.mark.parametrize("method", ["gradcam++", "layercam"])
def test_other_heatmap_methods_come_from_the_server_as_computed_here(server, classifier, images, method):
    remote = RemoteClassifier.connect(server)
    model_input = classifier.classify(images[0].data).model_input[np.newaxis]
    there, here = remote.explainer.explain(model_input, method), classifier.explainer.explain(model_input, method)
    assert there.dtype == here.dtype and np.array_equal(there, here)


def test_an_unreadable_upload_fails_in_the_remote_classifier_as_in_process(server, classifier):
    remote = RemoteClassifier.connect(server)
    with pytest.raises(ImageReadError) as here:
        classifier.classify(b"<html>not an x-ray</html>")
    with pytest.raises(ImageReadError) as there:
        remote.classify(b"<html>not an x-ray</html>")
    assert str(there.value) == str(here.value)


def test_a_server_of_another_model_version_is_refused(server, classifier):
    with pytest.raises(RemoteServingError, match=f"serves model '{re.escape(classifier.version)}'; this app's thresholds"):
        RemoteClassifier.connect(server, expected_version="some-other-model")


def test_a_server_that_is_not_there_is_a_remote_serving_error_naming_it():
    port = free_port()  # nothing listens on it
    with pytest.raises(RemoteServingError, match=f"cannot reach the fracture server at http://127.0.0.1:{port}"):
        RemoteClassifier.connect(f"http://127.0.0.1:{port}", timeout_s=5)


def test_the_app_builder_for_serve_run_and_kuberay_takes_text_arguments_and_rejects_bad_ones():
    from ray.serve import Application

    from serving.deployment import app_builder

    assert isinstance(app_builder({"replicas": "2", "replica_cpus": "0.5"}), Application)
    for bad in ({"replica": "2"}, {"replicas": "two"}, {"replicas": "0"}, {"replica_cpus": "-1"}):
        with pytest.raises(ValueError, match="replica"):
            app_builder(bad)
