"""Every case of the bad-input corpus (tests/corpus.py) through read_image and the shipped classifier."""

from pathlib import Path

import numpy as np
import pytest

from core.config import PROJECT_DIR
from core.imaging import MAX_FILE_BYTES, ImageReadError, read_image

# tests/ is not a package: tf-keras-vis installs a top-level "tests" package that would shadow it.
from tests import corpus
from tests.corpus import CASES, Reads, Rejected

READS = [case for case in CASES if isinstance(case.expected, Reads)]


def test_corpus_is_large_and_covers_both_outcomes():
    assert len(CASES) >= 45
    assert len({case.name for case in CASES}) == len(CASES), "case names must be unique"
    assert 0 < len(READS) < len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_read_image_gives_the_expected_outcome(case):
    data = case.make()
    if isinstance(case.expected, Rejected):
        with pytest.raises(ImageReadError) as error:  # any other exception type fails the test
            read_image(data)
        assert case.expected.message in str(error.value)
        return
    image = read_image(data)
    assert isinstance(image, np.ndarray) and image.dtype == np.float32
    assert image.shape == case.expected.shape
    assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0
    case.expected.check(image)


@pytest.mark.parametrize("case", READS, ids=lambda case: case.name)
def test_the_classifier_gives_a_probability_for_every_readable_case(shipped_classifier, case):
    result = shipped_classifier.classify(case.make())
    assert 0.0 <= result.probability_fractured <= 1.0
    assert result.image.shape == case.expected.shape


def test_the_classifier_passes_rejections_on_unchanged(shipped_classifier):
    for case in CASES:
        if isinstance(case.expected, Rejected):
            with pytest.raises(ImageReadError) as error:
                shipped_classifier.classify(case.make())
            assert case.expected.message in str(error.value), case.name


# --- the byte limit ------------------------------------------------------------------------

def test_the_default_byte_limit_is_50_mib():
    """The app's upload limit; tests/app/test_bad_uploads.py checks it against .streamlit/config.toml."""
    assert MAX_FILE_BYTES == 50 * 2**20
    data = corpus.padded_png(MAX_FILE_BYTES)
    assert read_image(data).shape == (8, 8)  # exactly at the limit is allowed
    with pytest.raises(ImageReadError, match=r"the upload is 50.0 MB \(52,428,801 bytes\); the limit is 50.0 MB"):
        read_image(data + b"\0")


def test_max_bytes_applies_to_bytes_and_paths(tmp_path):
    data = corpus.encode(corpus.marker_image(), "PNG")
    assert read_image(data, max_bytes=len(data)).shape == (40, 60)  # the limit itself is allowed
    with pytest.raises(ImageReadError, match=f"the upload is 0.0 MB \\({len(data):,} bytes\\); "
                                             f"the limit is 0.0 MB \\({len(data) - 1:,} bytes\\)"):
        read_image(data, max_bytes=len(data) - 1)
    path = tmp_path / "scan.png"
    path.write_bytes(data)
    with pytest.raises(ImageReadError, match=f"'scan.png' is 0.0 MB \\({len(data):,} bytes\\)"):
        read_image(path, max_bytes=100)


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    big = tmp_path / "huge.dcm"
    with open(big, "wb") as handle:  # sparse: 51 MB on paper, nothing written
        handle.truncate(51 * 2**20)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("a file over the limit was read"))
    with pytest.raises(ImageReadError, match=r"'huge.dcm' is 51.0 MB \(53,477,376 bytes\); the limit is 50.0 MB"):
        read_image(big)


# --- the documentation ----------------------------------------------------------------------

def test_docs_table_matches_the_corpus():
    """docs/robustness.md shows the table `python tests/corpus.py` prints; regenerate it when the corpus changes."""
    docs = (PROJECT_DIR / "docs" / "robustness.md").read_text()
    assert corpus.markdown_table() in docs
