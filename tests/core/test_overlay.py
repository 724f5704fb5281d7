"""core.overlay: mapping a heatmap back onto the X-ray (at full or display size), blending, PNG."""

import matplotlib
import numpy as np
import pytest

from core.overlay import heatmap_to_image, overlay_heatmap
from core.preprocessing import PreprocessConfig, content_box


@pytest.mark.parametrize("shape", [(20, 60), (60, 20), (40, 40), (3, 200)])
@pytest.mark.parametrize("aspect", ["pad", "stretch"])
def test_heatmap_to_image_crops_the_padding(shape, aspect):
    config = PreprocessConfig(32, aspect, "none")
    box = content_box(shape, config)
    top, left, height, width = box.top, box.left, box.height, box.width
    inside = np.zeros((32, 32), np.float32)
    inside[top : top + height, left : left + width] = 1.0
    mapped = heatmap_to_image(inside, shape, config)
    assert mapped.shape == shape
    np.testing.assert_allclose(mapped, 1.0)
    assert (heatmap_to_image(1.0 - inside, shape, config) == 0.0).all()


def test_heatmap_to_image_keeps_position():
    config = PreprocessConfig(32, "pad", "none")
    heatmap = np.zeros((32, 32), np.float32)
    heatmap[12:20, 24:32] = 1.0  # right end of the content of a 20 x 80 image (rows 12-19)
    mapped = heatmap_to_image(heatmap, (20, 80), config)
    assert mapped[:, 70:].min() > 0.99 and mapped[:, :50].max() == 0.0


def test_overlay_shape_and_opacity_extremes():
    rng = np.random.default_rng(0)
    image = rng.random((12, 20)).astype(np.float32)
    heatmap = rng.random((12, 20)).astype(np.float32)
    blended = overlay_heatmap(image, heatmap)
    assert blended.shape == (12, 20, 3) and blended.dtype == np.uint8

    grey = overlay_heatmap(image, heatmap, opacity=0.0)
    expected_grey = np.round(image * 255).astype(np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(grey[..., channel], expected_grey)

    coloured = overlay_heatmap(image, heatmap, opacity=1.0, colormap="viridis")
    expected = np.round(matplotlib.colormaps["viridis"](heatmap)[..., :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(coloured, expected)

    hot_cold = overlay_heatmap(np.zeros((1, 2)), np.array([[0.0, 1.0]]), opacity=1.0)  # jet
    assert hot_cold[0, 0, 2] > 100 and hot_cold[0, 0, 0] == 0  # blue for 0
    assert hot_cold[0, 1, 0] > 100 and hot_cold[0, 1, 2] == 0  # red for 1


@pytest.mark.parametrize("image, heatmap, message", [
    (np.zeros((4, 5)), np.zeros((5, 4)), "same shape"),
    (np.zeros((4, 4, 1)), np.zeros((4, 4, 1)), "2-D"),
    (np.full((4, 4), 1.2), np.zeros((4, 4)), "image values must be finite and in [0, 1]"),
    (np.zeros((4, 4)), np.full((4, 4), -0.1), "heatmap values must be finite and in [0, 1]"),
    (np.zeros((4, 4)), np.array([[np.nan] * 4] * 4), "heatmap values must be finite"),
])
def test_overlay_rejects_bad_inputs(image, heatmap, message):
    with pytest.raises(ValueError) as error:
        overlay_heatmap(image, heatmap)
    assert message in str(error.value)


def test_overlay_rejects_unknown_colormap_and_lists_options():
    with pytest.raises(ValueError) as error:
        overlay_heatmap(np.zeros((4, 4)), np.zeros((4, 4)), colormap="rainbowish")
    message = str(error.value)
    assert "rainbowish" in message
    assert all(name in message for name in ("jet", "inferno", "viridis"))


@pytest.mark.parametrize("opacity", [-0.1, 1.01, float("nan")])
def test_overlay_rejects_opacity_out_of_range(opacity):
    with pytest.raises(ValueError, match=r"opacity must be in \[0, 1\]"):
        overlay_heatmap(np.zeros((4, 4)), np.zeros((4, 4)), opacity=opacity)


def test_overlay_on_original_and_png_round_trip():
    import io

    from PIL import Image

    from core.overlay import encode_png, overlay_on_original

    config = PreprocessConfig(32, "pad", "none")
    image = np.linspace(0, 1, 20 * 60, dtype=np.float32).reshape(20, 60)
    overlay = overlay_on_original(image, np.ones((32, 32), np.float32), config, opacity=0.0)
    assert overlay.shape == (20, 60, 3) and overlay.dtype == np.uint8
    np.testing.assert_array_equal(overlay[..., 0], np.round(image * 255).astype(np.uint8))
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(overlay))))
    np.testing.assert_array_equal(decoded, overlay)


def test_fit_for_display_shrinks_only_large_images():
    from core.overlay import fit_for_display

    small = np.full((300, 200), 0.5, np.float32)
    assert fit_for_display(small) is small
    large = np.random.default_rng(0).random((3000, 1500)).astype(np.float32)
    shown = fit_for_display(large, max_side=800)
    assert shown.shape == (800, 400)
    assert 0.0 <= shown.min() and shown.max() <= 1.0
    assert shown.mean() == pytest.approx(large.mean(), abs=0.01)


def _shapes_whose_display_copy_letterboxes_differently(config):
    """Large (H, W) whose 800 px display copy rounds the letterbox to another model pixel."""
    from core.overlay import fit_for_display

    found = []
    for height in range(1500, 2600, 7):
        for width in (1013, 1777, 2399, 2901):
            shown = fit_for_display(np.zeros((height, width), np.float32)).shape
            if content_box((height, width), config) != content_box(shown, config):
                found.append(((height, width), shown))
    return found


def test_overlay_on_a_display_copy_is_placed_by_the_source_shape():
    from core.overlay import fit_for_display, overlay_on_original

    config = PreprocessConfig(192, "pad", "none")
    cases = _shapes_whose_display_copy_letterboxes_differently(config)
    assert cases, "expected some shapes whose display copy letterboxes differently"
    source_shape, shown_shape = cases[0]
    heatmap = np.random.default_rng(0).random((192, 192)).astype(np.float32)
    full = heatmap_to_image(heatmap, source_shape, config)
    on_copy = heatmap_to_image(heatmap, source_shape, config, output_shape=shown_shape)
    # Mapping at display size equals mapping at full size, then shrinking: same crop, other scale.
    expected = fit_for_display(full)
    assert np.abs(on_copy - expected).mean() < 0.02
    # Recomputing the crop from the display shape (the old bug) lands a model pixel off.
    wrong = heatmap_to_image(heatmap, shown_shape, config)
    assert np.abs(wrong - expected).mean() > np.abs(on_copy - expected).mean()
    image = np.zeros(shown_shape, np.float32)
    np.testing.assert_array_equal(
        overlay_on_original(image, heatmap, config, source_shape=source_shape, opacity=1.0),
        overlay_heatmap(image, on_copy, opacity=1.0))


def test_an_unflagged_map_is_faded_and_a_flagged_one_is_not():
    from core.overlay import UNFLAGGED_FADE, shown_opacity

    assert shown_opacity(0.4, flagged=True) == 0.4
    assert shown_opacity(0.4, flagged=False) == pytest.approx(0.4 * UNFLAGGED_FADE)
    assert shown_opacity(0.4, flagged=False) < 0.4
    with pytest.raises(ValueError, match="opacity"):
        shown_opacity(1.5, flagged=True)


def test_outlines_surround_each_hot_region_largest_first_and_skip_specks():
    from core.overlay import region_outlines

    heatmap = np.zeros((100, 100), np.float32)
    heatmap[10:20, 60:90] = 1.0  # 300 px
    heatmap[50:80, 10:30] = 0.7  # 600 px, above half the peak
    heatmap[95, 95] = 0.9  # one pixel: a speck under min_area (0.2% = 20 px)
    heatmap[40:45, 40:45] = 0.3  # below the level
    outlines = region_outlines(heatmap)
    assert len(outlines) == 2
    first, second = outlines
    assert (min(first.x), max(first.x), min(first.y), max(first.y)) == (10, 29, 50, 79)
    assert (min(second.x), max(second.x), min(second.y), max(second.y)) == (60, 89, 10, 19)
    assert (first.x[0], first.y[0]) == (first.x[-1], first.y[-1])  # closed


def test_an_even_or_empty_map_has_no_outline_specks_and_bad_maps_are_refused():
    from core.overlay import region_outlines

    assert region_outlines(np.zeros((30, 30), np.float32)) == ()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        region_outlines(np.full((4, 4), 2.0, np.float32))
    with pytest.raises(ValueError, match="2-D"):
        region_outlines(np.zeros((4, 4, 3), np.float32))


def test_scaled_outlines_keep_pixel_centres_on_pixel_centres():
    from core.overlay import Outline

    outline = Outline((0.0, 9.0), (0.0, 4.0)).scaled(2.0, 4.0)
    # pixel 0 of a 10 px map spans [-0.5, 0.5]: on a 20 px image its centre is at 0.5
    assert outline.x == (0.5, 18.5) and outline.y == (1.5, 17.5)


def test_the_colour_scale_matches_the_overlay_colours():
    from core.overlay import colour_scale

    scale = colour_scale("jet", steps=5)
    assert [position for position, _ in scale] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for position, colour in scale:
        # a fully opaque blend of a black image shows the colormap's own colour
        pixel = overlay_heatmap(np.zeros((1, 1), np.float32), np.full((1, 1), position, np.float32), opacity=1.0)
        assert colour == "rgb({}, {}, {})".format(*pixel[0, 0])
    with pytest.raises(ValueError, match="unknown colormap"):
        colour_scale("nope")


@pytest.mark.parametrize("colormap", ["jet", "inferno", "viridis", "magma", "turbo"])
def test_an_eight_bit_image_is_blended_from_a_table_with_the_same_bytes_as_matplotlib(colormap):
    """The reader makes k / 255 of an 8-bit file; such images take the lookup-table path, which must
    draw exactly the pixels of matplotlib's blend (bench.baselines keeps that code verbatim)."""
    from bench.baselines import matplotlib_overlay
    from core.overlay import _eight_bit_codes

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (41, 67)).astype(np.float32)
    image[0, :2] = (0, 255)  # black and white
    image /= 255.0
    heatmap = rng.random((41, 67)).astype(np.float32)
    heatmap[0, :3] = (0.0, 1.0, 0.5)
    assert _eight_bit_codes(image) is not None
    assert _eight_bit_codes(np.nextafter(image, 2, dtype=np.float32)) is None  # one ulp off: the pixel path
    for opacity in (0.0, 0.25, 0.4, 0.7, 1.0):
        ours = overlay_heatmap(image, heatmap, opacity=opacity, colormap=colormap)
        assert ours.dtype == np.uint8 and ours.shape == (41, 67, 3) and ours.flags.c_contiguous
        np.testing.assert_array_equal(ours, matplotlib_overlay(image, heatmap, opacity, colormap))
