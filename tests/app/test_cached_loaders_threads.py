"""The app's Streamlit caches (ui/state.py) under many sessions at once: the model is built once,
and cached answers under a cache stampede equal a sequential run and what core gives."""

import numpy as np
import pytest

from core import FractureClassifier
from core.config import MODELS_DIR
from tests.threads import run_together, synthetic_image

THREADS = 8
ROUNDS = 3

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "metadata.json").is_file(),
                                reason=f"no shipped model in {MODELS_DIR}")


@pytest.fixture(scope="module")
def classifier() -> FractureClassifier:
    return FractureClassifier.load()


@pytest.fixture(scope="module")
def synthetic_uploads() -> list[bytes]:
    return [synthetic_image(index) for index in range(THREADS)]


@pytest.fixture(scope="module")
def shared_page_functions():
    """ui.state's cached loaders, called outside a Streamlit run (Streamlit then keeps the
    caches in memory, as the server does); every cache is cleared before and after."""
    from ui import state

    cached = (state.load_classifier, state.classify_upload, state.heatmap_of, state.xray_png, state.overlay_png)
    for function in cached:
        function.clear()
    yield state
    for function in cached:
        function.clear()


def test_the_cached_model_is_built_once_when_many_sessions_ask_at_once(shared_page_functions):
    classifiers = run_together(lambda thread: shared_page_functions.load_classifier(), THREADS)
    assert all(candidate is classifiers[0] for candidate in classifiers)
    assert all(candidate.explainer is classifiers[0].explainer for candidate in classifiers)


def test_cached_page_functions_under_concurrency_equal_a_sequential_run(shared_page_functions, classifier,
                                                                        synthetic_uploads):
    """classify_upload and overlay_png (what the Classify and Batch pages show and offer for
    download), called by many threads at once, half of them for the same upload (a cache
    stampede), give the bytes a sequential run gives, and the probability ``core`` gives."""
    state = shared_page_functions
    images = synthetic_uploads[: THREADS // 2]  # two threads per image

    def page_answer(data: bytes, method: str):
        result = state.classify_upload(data)
        return (result.probability_fractured, result.image, result.model_input, state.xray_png(data),
                state.overlay_png(data, method))

    methods = ("gradcam", "layercam")
    sequential = {(index, method): page_answer(data, method) for index, data in enumerate(images) for method in methods}
    for index, data in enumerate(images):
        assert sequential[index, "gradcam"][0] == classifier.classify(data).probability_fractured

    for round_number in range(ROUNDS):
        for function in (state.classify_upload, state.heatmap_of, state.xray_png, state.overlay_png):
            function.clear()  # every round computes afresh, with threads racing on the same keys

        def task(thread):
            index, method = thread % len(images), methods[(thread // len(images) + round_number) % 2]
            return (index, method), page_answer(images[index], method)

        for key, answer in run_together(task, THREADS):
            expected = sequential[key]
            assert answer[0] == expected[0], f"round {round_number}, {key}: probability differs"
            assert np.array_equal(answer[1], expected[1]) and np.array_equal(answer[2], expected[2])
            assert answer[3] == expected[3], f"round {round_number}, {key}: X-ray PNG differs"
            assert answer[4] == expected[4], f"round {round_number}, {key}: overlay PNG differs"
