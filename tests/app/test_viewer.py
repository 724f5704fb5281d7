"""ui.viewer: the Plotly viewer keeps the X-ray and its heatmap in step, in the X-ray's pixels."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from core.overlay import Outline, colour_scale
from core.samples import FractionBox
from ui.viewer import (HEIGHT_RANGE, ONE_IMAGE, SIDE_BY_SIDE, HeatmapLayer, XrayPicture, figure_height,
                          viewer_figure)


def _picture(height: int = 300, width: int = 200) -> XrayPicture:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width), np.uint8)).save(buffer, format="PNG")
    return XrayPicture("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(), height, width)


def _layer(opacity: float = 0.4, outlines=()) -> HeatmapLayer:
    values = np.linspace(0, 1, 30 * 20, dtype=np.float32).reshape(30, 20)
    return HeatmapLayer(values, "inferno", opacity, tuple(outlines))


def _traces(figure, kind: str) -> list:
    return [trace for trace in figure.data if trace.type == kind]


def test_side_by_side_shows_the_xray_twice_on_matched_axes_with_the_heatmap_on_the_right():
    figure = viewer_figure(_picture(), _layer())
    images, [heatmap] = _traces(figure, "image"), _traces(figure, "heatmap")
    assert [(image.xaxis, image.yaxis) for image in images] == [("x", "y"), ("x2", "y2")]
    assert (heatmap.xaxis, heatmap.yaxis) == ("x2", "y2")
    # zooming or panning one panel moves the other: the second pair of axes follows the first
    assert figure.layout.xaxis2.matches == "x" and figure.layout.yaxis2.matches == "y"
    assert figure.layout.dragmode == "pan"


def test_the_heatmap_cells_cover_exactly_the_xray_pixels():
    picture, layer = _picture(300, 200), _layer()
    [heatmap] = _traces(viewer_figure(picture, layer), "heatmap")
    rows, columns = layer.values.shape
    # pixel centres are at integers, so the image spans -0.5 .. size - 0.5 on each axis
    assert heatmap.x0 - heatmap.dx / 2 == pytest.approx(-0.5)
    assert heatmap.x0 + (columns - 0.5) * heatmap.dx == pytest.approx(picture.width - 0.5)
    assert heatmap.y0 - heatmap.dy / 2 == pytest.approx(-0.5)
    assert heatmap.y0 + (rows - 0.5) * heatmap.dy == pytest.approx(picture.height - 0.5)
    np.testing.assert_array_equal(np.asarray(heatmap.z), layer.values)


def test_the_heatmap_has_a_colour_bar_in_the_overlay_colours_and_the_opacity_given():
    [heatmap] = _traces(viewer_figure(_picture(), _layer(opacity=0.14)), "heatmap")
    assert heatmap.opacity == pytest.approx(0.14)
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 1.0)  # the scale is the map's own, 0 to its peak
    assert [tuple(stop) for stop in heatmap.colorscale] == list(colour_scale("inferno"))
    assert "not a probability" in heatmap.colorbar.title.text


def test_outlines_and_boxes_are_drawn_in_both_panels_in_the_pictures_pixels():
    outline = Outline((10.0, 50.0, 50.0, 10.0), (20.0, 20.0, 60.0, 20.0))
    box = FractionBox(0.25, 0.5, 0.75, 1.0)
    figure = viewer_figure(_picture(300, 200), _layer(outlines=[outline]), boxes=(box,))
    lines = _traces(figure, "scatter")
    outlines = [trace for trace in lines if trace.legendgroup == "outline"]
    boxes = [trace for trace in lines if trace.legendgroup == "boxes"]
    assert [trace.xaxis for trace in outlines] == ["x", "x2"] and [trace.xaxis for trace in boxes] == ["x", "x2"]
    assert outlines[0].x == outline.x and outlines[0].y == outline.y
    assert (min(boxes[0].x), max(boxes[0].x)) == (49.5, 149.5)  # 0.25 and 0.75 of 200 px
    assert (min(boxes[0].y), max(boxes[0].y)) == (149.5, 299.5)


def test_one_image_view_switches_the_heatmap_and_outlines_off_and_keeps_the_xray_and_boxes():
    outline = Outline((1.0, 5.0, 5.0, 1.0), (1.0, 1.0, 5.0, 1.0))
    figure = viewer_figure(_picture(), _layer(outlines=[outline]), layout=ONE_IMAGE,
                           boxes=(FractionBox(0.1, 0.1, 0.2, 0.2),))
    assert len(_traces(figure, "image")) == 1 and len(_traces(figure, "heatmap")) == 1
    [menu] = figure.layout.updatemenus
    on, off = (button.args[0]["visible"] for button in menu.buttons)
    assert all(on)
    hidden = {trace.type if trace.type != "scatter" else trace.legendgroup
              for trace, visible in zip(figure.data, off) if not visible}
    assert hidden == {"heatmap", "outline"}


def test_the_figure_height_follows_the_image_shape_within_bounds():
    low, high = HEIGHT_RANGE
    tall, wide = figure_height(_picture(400, 200), SIDE_BY_SIDE), figure_height(_picture(200, 400), SIDE_BY_SIDE)
    assert tall > wide
    assert figure_height(_picture(10_000, 10), SIDE_BY_SIDE) <= high + 100
    assert figure_height(_picture(10, 10_000), ONE_IMAGE) >= low


def test_the_figure_names_the_upload_as_its_ui_revision_whatever_the_heatmap_settings():
    first = viewer_figure(_picture(), _layer(opacity=0.4), revision="file-1")
    second = viewer_figure(_picture(), _layer(opacity=0.1), revision="file-1")
    assert first.layout.uirevision == second.layout.uirevision == "file-1"


@pytest.mark.parametrize("layout", [SIDE_BY_SIDE, ONE_IMAGE])
def test_the_viewer_figure_passes_plotlys_own_validation(layout):
    import plotly.graph_objects as go

    outline = Outline((1.0, 5.0, 5.0, 1.0), (1.0, 1.0, 5.0, 1.0))
    figure = viewer_figure(_picture(), _layer(outlines=[outline]), layout=layout, boxes=(FractionBox(0.1, 0.1, 0.2, 0.2),))
    go.Figure(figure.to_dict())  # raises ValueError on any property Plotly does not know or accept


def test_the_band_strip_marks_the_bands_the_threshold_and_the_probability():
    import plotly.graph_objects as go

    from core.triage import TriageBands
    from ui.viewer import band_strip_figure

    figure = band_strip_figure(TriageBands(0.1, 0.5), 0.3, threshold_text="0.300", probability=0.72,
                               probability_text="0.720")
    go.Figure(figure.to_dict())
    rectangles = [(shape.x0, shape.x1) for shape in figure.layout.shapes if shape.type == "rect"]
    assert rectangles == [(0.0, 0.1), (0.1, 0.5), (0.5, 1.0)]
    [line] = [shape for shape in figure.layout.shapes if shape.type == "line"]
    assert line.x0 == line.x1 == 0.3
    [marker] = figure.data
    assert list(marker.x) == [0.72]
    texts = [annotation.text for annotation in figure.layout.annotations]
    assert "threshold 0.300" in texts and "P = 0.720" in texts
