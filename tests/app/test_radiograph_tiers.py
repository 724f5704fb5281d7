"""Both tiers of the radiograph check on the pages: a picture that is not a radiograph gets the
warning; a real X-ray unlike the training images gets only the quieter caution, never the claim
that it is not an X-ray. Both pages say what core.radiograph_check says of the same bytes."""

import csv
import io

import pytest
from PIL import Image, ImageDraw, ImageOps
from sklearn.datasets import load_sample_image
from streamlit.testing.v1 import AppTest

from core.classifier import FractureClassifier
from core.config import PROJECT_DIR
from core.samples import load_samples, sample_bytes
from tests.app.app_pages import page_alone
from tests.app.media import download_data
from tests.app.page_text import shown

APP = str(PROJECT_DIR / "streamlit_app.py")
BATCH = "batch"
TIMEOUT = 120  # the first run imports TensorFlow and loads the model
NOT_A_RADIOGRAPH = "does not look like a radiograph"
CAUTION = "unlike the training images"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _shifted(data: bytes, angle: float) -> bytes:
    """A shipped sample as another hospital might send it: inverted (MONOCHROME1-like), rotated with
    black corners, with a burned-in side marker."""
    image = ImageOps.invert(Image.open(io.BytesIO(data)).convert("L")).rotate(angle, expand=True, fillcolor=0)
    ImageDraw.Draw(image).text((12, 12), "R  PORTABLE", fill=255)
    return _png(image)


@pytest.fixture(scope="module")
def shipped() -> FractureClassifier:
    return FractureClassifier.load()


@pytest.fixture(scope="module")
def unlike_xray(shipped) -> bytes:
    """A shifted sample X-ray that the shipped check calls a radiograph unlike the training images."""
    for sample in load_samples():
        for angle in (0, 25, 90):
            data = _shifted(sample_bytes(sample), angle)
            check = shipped.classify(data).radiograph_check
            if check.looks_like_radiograph and check.unlike_training_data:
                return data
    pytest.fail("no shifted sample is a tier-2 radiograph for the shipped check; pick other shifts")


@pytest.fixture(scope="module")
def grey_photo(shipped) -> bytes:
    data = _png(Image.fromarray(load_sample_image("china.jpg")).convert("L"))
    assert not shipped.classify(data).radiograph_check.looks_like_radiograph  # tier 1 catches it
    return data


def _notices(app) -> tuple[list[str], list[str]]:
    return [shown(element.value) for element in app.warning], [shown(element.value) for element in app.info]


@pytest.mark.parametrize("case", ["unlike_xray", "grey_photo"])
def test_classify_gives_tier_one_a_warning_and_tier_two_only_a_caution(case, request):
    """A real X-ray unlike the training images is cautioned, never called "not a radiograph", and
    still gets its verdict; a grey photo gets the warning and no caution."""
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].upload(f"{case}.png", request.getfixturevalue(case), "image/png").run()
    assert not app.exception
    warnings, infos = _notices(app)
    if case == "unlike_xray":
        assert any(CAUTION in text for text in infos), infos
        assert not any(NOT_A_RADIOGRAPH in text for text in warnings + infos)
    else:
        assert any(NOT_A_RADIOGRAPH in text for text in warnings), warnings
        assert not any(CAUTION in text for text in infos)
    assert any(f"{case}.png" in shown(alert.value) and "P(fractured)" in shown(alert.value)
               for alert in [*app.error, *app.warning, *app.success])  # the verdict is given either way


def test_batch_table_and_csv_give_each_tier_its_own_column(unlike_xray, grey_photo, media_files):
    app = page_alone(BATCH, default_timeout=TIMEOUT)
    app.run()
    app.file_uploader[0].set_value([("portable.png", unlike_xray, "image/png"),
                                    ("photo.png", grey_photo, "image/png")]).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["looks like an X-ray"]) == ["yes", "no"]
    assert list(table["like the training images"]) == ["no", "–"]
    rows = list(csv.DictReader(io.StringIO(download_data(app, "Download CSV", media_files).decode())))
    assert [(row["looks_like_radiograph"], row["unlike_training_data"]) for row in rows] == [("yes", "yes"), ("no", "no")]
    warnings, infos = _notices(app)
    assert any("1 of 2 do not look like radiographs" in text for text in warnings), warnings
    assert any("1 of 2 are X-rays unlike the training images" in text for text in infos), infos
