"""An image of an extreme aspect (issue 25, item 6): a 2,000,000 x 1 px PNG of a few KB reads and
classifies, but libpng writes no side over 1,000,000 px. Its overlay is drawn at the most a PNG
can hold, its aspect kept, so ``python -m core.predict --heatmap-dir`` scores and draws every file
(it died with a traceback at that file, before the files after it)."""

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from core.config import MODELS_DIR
from core.overlay import PNG_MAX_SIDE, encode_png
from core.predict import main
from core.scoring import overlay_png

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "metadata.json").is_file(), reason=f"no shipped model in {MODELS_DIR}")

EXTREME = {"wide": (1, 2_000_000), "tall": (2_000_000, 1), "strip": (3, 1_500_000)}  # (rows, columns)


def _png(path, pixels: np.ndarray):
    Image.fromarray(pixels).save(path)
    return path


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        image.MAX_IMAGE_PIXELS = None
        return image.size  # (width, height)


@pytest.mark.parametrize("name", EXTREME)
def test_the_overlay_of_an_extreme_aspect_is_written_at_the_most_a_png_holds(shipped_classifier, tmp_path, name):
    rows, columns = EXTREME[name]
    ramp = np.linspace(0, 255, max(rows, columns)).astype(np.uint8)
    pixels = np.broadcast_to(ramp.reshape(-1, 1) if rows > columns else ramp, (rows, columns)).copy()
    data = _png(tmp_path / f"{name}.png", pixels).read_bytes()
    assert len(data) < 50_000
    result = shipped_classifier.classify(data, heatmap=shipped_classifier.default_heatmap)
    png = overlay_png(result, shipped_classifier.preprocess_config)
    width, height = _size(png)
    assert max(width, height) == PNG_MAX_SIDE
    assert (width > height) == (columns > rows)
    assert min(width, height) == max(1, round(min(rows, columns) * PNG_MAX_SIDE / max(rows, columns)))


def test_an_ordinary_overlay_is_drawn_as_before(shipped_classifier):
    from core.overlay import overlay_on_original

    pixels = np.random.default_rng(3).integers(0, 255, (300, 240), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    result = shipped_classifier.classify(buffer.getvalue(), heatmap=shipped_classifier.default_heatmap)
    config = shipped_classifier.preprocess_config
    assert overlay_png(result, config) == encode_png(overlay_on_original(result.image, result.heatmap, config))


def test_encode_png_names_the_limit_instead_of_failing_in_libpng():
    assert _size(encode_png(np.zeros((1, PNG_MAX_SIDE, 3), np.uint8))) == (PNG_MAX_SIDE, 1)
    for shape in ((1, PNG_MAX_SIDE + 1, 3), (PNG_MAX_SIDE + 1, 1), (PNG_MAX_SIDE + 1, 2, 4)):
        with pytest.raises(ValueError, match="at most 1,000,000 px a side"):
            encode_png(np.zeros(shape, np.uint8))


def test_the_cli_scores_and_draws_every_file_around_an_extreme_aspect(tmp_path):
    noise = np.random.default_rng(5).integers(0, 255, (300, 240), dtype=np.uint8)
    paths = [_png(tmp_path / "before.png", noise), _png(tmp_path / "wide.png", np.zeros(EXTREME["wide"], np.uint8)),
             _png(tmp_path / "after.png", noise[::-1].copy())]
    out = tmp_path / "overlays"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([*map(str, paths), "--heatmap-dir", str(out), "--json"])
    records = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert code == 0
    assert [record["path"] for record in records] == [str(path) for path in paths]
    assert all(record.get("error") is None and 0.0 <= record["probability_fractured"] <= 1.0 for record in records)
    overlays = sorted(path.name for path in out.iterdir())
    assert len(overlays) == 3 and any(name.startswith("wide_") for name in overlays)
    wide = next(path for path in out.iterdir() if path.name.startswith("wide_"))
    assert _size(wide.read_bytes()) == (PNG_MAX_SIDE, 1)
