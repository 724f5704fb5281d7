"""The Classify page's viewer: the X-ray and its heatmap in one Plotly figure, zoomed and panned
together, at the image's own resolution (up to :data:`VIEWER_LONG_SIDE`).

The X-ray is one PNG; the heatmap is drawn over it by the browser from the map at the model's
resolution, so the colour bar, the opacity and the fade cost no re-encoding. What is expensive
(decoding, windowing, encoding, mapping the heatmap) is cached per upload.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.imaging import read_image
from core.imaging.windowing import Window, WindowableImage, apply_window, dicom_windowable
from core.overlay import (DISPLAY_LONG_SIDE, OUTLINE_LEVEL, Outline, colour_scale, encode_png, fit_for_display,
                          heatmap_to_image, region_outlines)
from core.preprocessing import content_box
from ui import state

VIEWER_LONG_SIDE = 2048  # a 12 MP scan is shown at up to this size; FracAtlas images are ~450 px
SIDE_BY_SIDE = "Side by side"
ONE_IMAGE = "Overlay"  # one image, with a heatmap on/off switch in the figure
LAYOUTS = (SIDE_BY_SIDE, ONE_IMAGE)
# The figure's height follows the image's shape at a typical wide-screen column width (a phone
# shows the same figure narrower, with space above and below).
PANEL_WIDTH = {SIDE_BY_SIDE: 310, ONE_IMAGE: 640}
HEIGHT_RANGE = (260, 760)
COLOUR_BAR_HEIGHT = 70
OUTLINE_COLOUR = "#ffffff"
BOX_COLOUR = "#39ff14"
# Pan by dragging, zoom with the wheel or a pinch, double-click to reset: a viewer's gestures.
PLOTLY_CONFIG = {"scrollZoom": True, "displaylogo": False, "doubleClick": "reset",
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"]}


@dataclass(frozen=True)
class XrayPicture:
    """The X-ray as the viewer shows it."""

    uri: str  # data:image/png;base64,…
    height: int
    width: int


@dataclass(frozen=True)
class HeatmapLayer:
    """What the viewer draws over the X-ray."""

    values: np.ndarray  # float32 (h, w) in [0, 1], the map over the image only (letterbox cropped)
    colormap: str
    opacity: float  # as drawn (already faded when the image is not flagged)
    outlines: tuple[Outline, ...]  # in the X-ray picture's pixels; empty when not flagged


@st.cache_data(max_entries=32, show_spinner=False)
def windowable_of(data: bytes) -> WindowableImage | None:
    """A DICOM upload's values before any window (None for other formats), at the viewer's size.

    Raises:
        core.imaging.ImageReadError: for a broken DICOM (the page has already said so).
    """
    return dicom_windowable(data, max_side=VIEWER_LONG_SIDE)


@st.cache_data(max_entries=32, show_spinner=False)
def xray_picture(data: bytes, window: Window | None = None) -> XrayPicture:
    """The upload as a grey PNG at its own resolution (long side at most :data:`VIEWER_LONG_SIDE`).

    Args:
        window: a DICOM window to show the values through; None for the image as the model read it.
    """
    if window is not None:
        grey = apply_window(windowable_of(data).values, window)
    else:
        result = state.classify_upload(data)
        if max(result.source_shape) <= DISPLAY_LONG_SIDE:  # the cached display copy is the image itself
            grey = result.image
        else:
            grey = fit_for_display(read_image(data), VIEWER_LONG_SIDE)
    pixels = np.round(np.clip(grey, 0.0, 1.0) * 255).astype(np.uint8)
    uri = "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode("ascii")
    return XrayPicture(uri, *pixels.shape)


@st.cache_data(max_entries=256, show_spinner=False)
def image_heatmap(data: bytes, method: str) -> np.ndarray:
    """The upload's heatmap over the image only, at the model's resolution (h, w)."""
    result = state.classify_upload(data)
    config = state.load_classifier().preprocess_config
    box = content_box(result.source_shape, config)
    return heatmap_to_image(state.heatmap_of(data, method), result.source_shape, config,
                            output_shape=(box.height, box.width)).astype(np.float32)


def outlines_on(picture: XrayPicture, heatmap: np.ndarray) -> tuple[Outline, ...]:
    """The suspected regions' outlines, moved from the map's pixels to the picture's."""
    rows, columns = heatmap.shape
    return tuple(outline.scaled(picture.width / columns, picture.height / rows)
                 for outline in region_outlines(heatmap))


def viewer_figure(picture: XrayPicture, heatmap: HeatmapLayer, *, layout: str = SIDE_BY_SIDE,
                  boxes: tuple = (), revision: str = ""):
    """The viewer: the X-ray, and the X-ray under its heatmap, in step (one pair of axes each,
    matched) or one image with a heatmap on/off switch.

    Args:
        boxes: the radiologists' boxes (``core.samples.FractionBox``: fractions of width and height).
        revision: Plotly's ``uirevision``, the upload's key: a redraw of the same chart keeps the
            user's zoom.
    """
    panels = (("x", "y"),) if layout == ONE_IMAGE else (("x", "y"), ("x2", "y2"))
    traces = []
    for index, (x_axis, y_axis) in enumerate(panels):
        traces.append({"type": "image", "source": picture.uri, "xaxis": x_axis, "yaxis": y_axis,
                       "hoverinfo": "skip", "name": "X-ray"})
        if layout == ONE_IMAGE or index == 1:
            traces.append(_heatmap_trace(picture, heatmap, x_axis, y_axis))
        traces += _outline_traces(heatmap.outlines, x_axis, y_axis) + _box_traces(picture, boxes, x_axis, y_axis)
    figure_layout = _layout(picture, layout, revision)
    if layout == ONE_IMAGE:
        figure_layout["updatemenus"] = [_heatmap_switch(traces)]
    return _figure(traces, figure_layout)


def _figure(traces: list[dict], layout: dict):
    """A Plotly figure of trusted dicts, without Plotly's per-property validation (tens of
    milliseconds per rerun for the viewer); tests/app/test_viewer.py validates the same dicts."""
    import plotly.graph_objects as go

    return go.Figure({"data": traces, "layout": layout}, _validate=False)


def _heatmap_trace(picture: XrayPicture, heatmap: HeatmapLayer, x_axis: str, y_axis: str) -> dict:
    rows, columns = heatmap.values.shape
    cell_width, cell_height = picture.width / columns, picture.height / rows
    return {
        "type": "heatmap", "z": heatmap.values, "x0": cell_width / 2 - 0.5, "dx": cell_width,
        "y0": cell_height / 2 - 0.5, "dy": cell_height, "xaxis": x_axis, "yaxis": y_axis, "zmin": 0.0, "zmax": 1.0,
        "zsmooth": "fast", "opacity": heatmap.opacity, "name": "Heatmap",
        "colorscale": [list(stop) for stop in colour_scale(heatmap.colormap)],
        "hovertemplate": "heatmap %{z:.2f} of its peak<extra></extra>",
        "colorbar": {"title": {"text": "Heatmap, as a share of its own peak (not a probability)", "side": "top"},
                     "orientation": "h", "thickness": 10, "len": 0.8, "x": 0.5, "xanchor": "center",
                     "y": -0.02, "yanchor": "top", "tickvals": [0, 0.25, 0.5, 0.75, 1],
                     "ticktext": ["0", "25%", "50%", "75%", "peak"]}}


def _outline_traces(outlines: tuple[Outline, ...], x_axis: str, y_axis: str) -> list[dict]:
    return [{"type": "scatter", "x": outline.x, "y": outline.y, "xaxis": x_axis, "yaxis": y_axis, "mode": "lines",
             "line": {"color": OUTLINE_COLOUR, "width": 2}, "hoverinfo": "skip",
             "name": f"Suspected region (map ≥ {OUTLINE_LEVEL:.0%} of its peak)", "legendgroup": "outline"}
            for outline in outlines]


def _box_traces(picture: XrayPicture, boxes: tuple, x_axis: str, y_axis: str) -> list[dict]:
    traces = []
    for box in boxes:
        left, right = box.left * picture.width - 0.5, box.right * picture.width - 0.5
        top, bottom = box.top * picture.height - 0.5, box.bottom * picture.height - 0.5
        traces.append({"type": "scatter", "x": [left, right, right, left, left], "y": [top, top, bottom, bottom, top],
                       "xaxis": x_axis, "yaxis": y_axis, "mode": "lines", "hoverinfo": "skip",
                       "line": {"color": BOX_COLOUR, "width": 2, "dash": "dash"},
                       "name": "Radiologists' box", "legendgroup": "boxes"})
    return traces


def figure_height(picture: XrayPicture, layout: str) -> int:
    """Pixels: the image's height at the layout's typical panel width, within :data:`HEIGHT_RANGE`,
    plus the colour bar."""
    low, high = HEIGHT_RANGE
    return round(min(max(PANEL_WIDTH[layout] * picture.height / picture.width, low), high)) + COLOUR_BAR_HEIGHT


def _layout(picture: XrayPicture, layout: str, revision: str) -> dict:
    hidden = {"showticklabels": False, "showgrid": False, "zeroline": False, "showline": False, "ticks": ""}
    axes = {"xaxis": dict(hidden), "yaxis": dict(hidden)}
    if layout == SIDE_BY_SIDE:
        axes = {"xaxis": {"domain": [0.0, 0.49], **hidden}, "xaxis2": {"domain": [0.51, 1.0], "matches": "x", **hidden},
                "yaxis": dict(hidden), "yaxis2": {"matches": "y", "anchor": "x2", **hidden}}
    return {**axes, "height": figure_height(picture, layout), "margin": {"l": 0, "r": 0, "t": 4, "b": COLOUR_BAR_HEIGHT},
            "dragmode": "pan", "uirevision": revision, "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)", "showlegend": False}


def _heatmap_switch(traces: list[dict]) -> dict:
    """Buttons in the figure that hide and show the heatmap and outlines (no rerun, zoom kept)."""
    on = [True] * len(traces)
    off = [not (trace["type"] == "heatmap" or trace.get("legendgroup") == "outline") for trace in traces]
    return {"type": "buttons", "direction": "right", "x": 0.0, "y": 1.0, "xanchor": "left", "yanchor": "top",
            "showactive": True, "active": 0, "pad": {"l": 4, "t": 4}, "bgcolor": "#f0f2f6",
            "bordercolor": "#a3a8b8", "font": {"color": "#31333f"},
            "buttons": [{"label": "Heatmap on", "method": "restyle", "args": [{"visible": on}]},
                        {"label": "X-ray only", "method": "restyle", "args": [{"visible": off}]}]}


BAND_COLOURS = {"no_fracture": "rgba(33, 195, 84, 0.35)", "doubt": "rgba(255, 164, 33, 0.45)",
                "fracture": "rgba(255, 75, 75, 0.40)"}
STATIC_CONFIG = {"staticPlot": True}


def band_strip_figure(bands, threshold: float, *, threshold_text: str, probability: float | None = None,
                      probability_text: str = ""):
    """P(fractured) from 0 to 1 as the three triage bands, the session's threshold as a line and,
    when given, one image's probability as a marker: where an answer lies, at a glance.

    Args:
        bands: a :class:`core.triage.TriageBands`.
        threshold_text, probability_text: the numbers as the verdict shows them (same precision).
    """
    from core.triage import BAND_TEXT, DOUBT_BAND, FRACTURE_BAND, NO_FRACTURE_BAND

    ink = "#31333f"
    edges = ((NO_FRACTURE_BAND, 0.0, bands.doubt_from), (DOUBT_BAND, bands.doubt_from, bands.fracture_from),
             (FRACTURE_BAND, bands.fracture_from, 1.0))
    shapes = [{"type": "rect", "x0": low, "x1": high, "y0": 0, "y1": 1, "line": {"width": 0},
               "fillcolor": BAND_COLOURS[band], "layer": "below"} for band, low, high in edges]
    shapes.append({"type": "line", "x0": threshold, "x1": threshold, "y0": -0.15, "y1": 1.15,
                   "line": {"color": ink, "width": 2}})
    labels = [{"x": (low + high) / 2, "y": 0.5, "text": BAND_TEXT[band], "showarrow": False,
               "font": {"size": 11, "color": ink}}
              for band, low, high in edges if high - low >= 0.12]  # where there is room for the name
    labels.append({"x": threshold, "y": 1.15, "yanchor": "bottom", "text": f"threshold {threshold_text}",
                   "showarrow": False, "font": {"size": 11, "color": ink}, "xanchor": _anchor(threshold)})
    traces = []
    if probability is not None:
        traces.append({"type": "scatter", "x": [probability], "y": [0.5], "mode": "markers", "hoverinfo": "skip",
                       "marker": {"symbol": "diamond", "size": 13, "color": ink, "line": {"color": "white", "width": 1.5}}})
        labels.append({"x": probability, "y": -0.15, "yanchor": "top", "text": f"P = {probability_text}",
                       "showarrow": False, "font": {"size": 11, "color": ink}, "xanchor": _anchor(probability)})
    layout = {"height": 86, "margin": {"l": 6, "r": 6, "t": 22, "b": 22}, "showlegend": False,
              "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "shapes": shapes, "annotations": labels,
              "xaxis": {"range": [0, 1], "showgrid": False, "zeroline": False, "showticklabels": False, "fixedrange": True},
              "yaxis": {"range": [-0.15, 1.15], "visible": False, "fixedrange": True}}
    return _figure(traces, layout)


def _anchor(position: float) -> str:
    """Labels near an end of the strip grow inwards, so that they are not cut off."""
    return "left" if position < 0.15 else "right" if position > 0.85 else "center"
