"""Pieces of layout more than one page draws: the threshold controls (sidebar, and compact for
phones), the triage band strip, and text shown as typed."""

from __future__ import annotations

import re
from collections.abc import Mapping

import streamlit as st

from core.evaluation import PointingFigures
from core.heatmaps import METHODS
from core.heldout import describe_costs, percent
from core.radiograph_check import RadiographCheck
from core.thresholds import PRESETS, OperatingThresholds
from core.triage import BAND_COLOURS, BAND_TEXT, DOUBT_BAND, FRACTURE_BAND, NO_FRACTURE_BAND, TriageBands
from ui import state

SLIDER_LABEL = "P(fractured) at or above this is called a fracture"
SPLIT_NAMES = {"test": "held-out test split", "val": "val split (it chose the thresholds)"}
BAND_ALERTS = {FRACTURE_BAND: (st.error, ":material/emergency:"), DOUBT_BAND: (st.warning, ":material/help:"),
               NO_FRACTURE_BAND: (st.success, ":material/check_circle:")}
COMPACT_CONTAINER_KEY = "compact-threshold"
PHONE_MAX_WIDTH_PX = 768  # up to this width Streamlit starts with the sidebar collapsed

# Every ASCII character that CommonMark, Streamlit's colour/icon directives (":red[…]",
# ":material/…:") or its LaTeX ("$…$") give a meaning; a backslash makes each one literal.
# "&" starts an HTML entity ("a&copy;b.jpg" would show as "a©b.jpg"); "\&" is a literal "&".
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$/&])")


def markdown_literal(text: str) -> str:
    """``text`` escaped so that Streamlit's markdown shows it as typed (file names, messages quoting a file)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def threshold_sidebar() -> float:
    """The decision threshold (presets, slider, triage bands) and what it costs on the split the
    Model performance page shows; on a phone, where the sidebar starts collapsed, the same
    controls in a compact expander at the top of the page.

    Returns:
        The session's threshold, unrounded: a preset's stored value or the slider's.
    """
    thresholds = state.load_thresholds()
    current = state.threshold()
    bands = TriageBands.from_thresholds(thresholds)
    with st.sidebar:
        st.subheader("Decision threshold")
        threshold_controls_ui(thresholds, current, bands, key_prefix="", slider_key=state.SLIDER_KEY)
        held_out_costs_ui(current)
    compact_threshold_ui(thresholds, current, bands)
    return current


def threshold_controls_ui(thresholds: OperatingThresholds, current: float, bands: TriageBands, *,
                          key_prefix: str, slider_key: str) -> None:
    """The preset buttons (the active one highlighted), the slider, the band strip and the preset's
    name; ``key_prefix`` and ``slider_key`` keep the widgets of two copies apart."""
    active = thresholds.preset_at(current)
    for preset in PRESETS:
        value = thresholds[preset.name]
        st.button(f"{preset.label} · {value:.3f}", key=f"{key_prefix}preset-{preset.name}",
                  help=preset.rule[:1].upper() + preset.rule[1:], on_click=state.set_threshold,
                  args=(value,), type="primary" if preset.name == active else "secondary", width="stretch")
    st.slider(SLIDER_LABEL, 0.0, 1.0, step=0.001, format="%.3f", **state.bind_threshold_slider(slider_key))
    st.markdown(band_strip_html(bands, current), unsafe_allow_html=True)
    active_label = next((preset.label for preset in PRESETS if preset.name == active), None)
    st.markdown(f"Active preset: **{active_label}**" if active_label else "Custom threshold (no preset)")


def compact_threshold_ui(thresholds: OperatingThresholds, current: float, bands: TriageBands) -> None:
    """The threshold controls in a collapsed expander above the page's content, shown on narrow
    screens only (CSS): the phone's sidebar would cover the result while open."""
    with st.container(key=COMPACT_CONTAINER_KEY):
        with st.expander("Decision threshold", icon=":material/tune:"):
            threshold_controls_ui(thresholds, current, bands, key_prefix="compact-",
                                  slider_key=state.PHONE_SLIDER_KEY)
            point = state.load_held_out(state.held_out_split()).at_threshold(current)
            st.caption(f"On the {SPLIT_NAMES[state.held_out_split()]}: {describe_costs(point)}.")
    st.html(f"<style>@media (min-width: {PHONE_MAX_WIDTH_PX + 1}px) "
            f"{{ .st-key-{COMPACT_CONTAINER_KEY} {{ display: none; }} }}</style>")


def band_strip_html(bands: TriageBands, threshold: float) -> str:
    """A thin strip of the three triage bands over P(fractured) 0..1, the threshold marked on it,
    the band edges written under their places and a one-line key (plain HTML: nothing for the
    server to draw or the browser to load)."""
    low, high, marker = (100 * value for value in (bands.doubt_from, bands.fracture_from, threshold))
    colours = (f"{BAND_COLOURS[NO_FRACTURE_BAND]} 0 {low:.2f}%, {BAND_COLOURS[DOUBT_BAND]} {low:.2f}% {high:.2f}%, "
               f"{BAND_COLOURS[FRACTURE_BAND]} {high:.2f}% 100%")
    edges = "".join(f'<span style="position:absolute;left:{position:.2f}%;transform:translateX(-50%)">{value:.3f}'
                    f'</span>' for position, value in ((low, bands.doubt_from), (high, bands.fracture_from)))
    key = " ".join(f'<span style="color:{BAND_COLOURS[band]}">■</span>&nbsp;{BAND_TEXT[band].lower()}'
                   for band in (NO_FRACTURE_BAND, DOUBT_BAND, FRACTURE_BAND))
    return (f'<div title="Triage bands, chosen on val; the black mark is your threshold" '
            f'style="position:relative;height:8px;margin:-0.6rem 0 0 0;border-radius:4px;'
            f'background:linear-gradient(to right, {colours})">'
            f'<div style="position:absolute;left:calc({marker:.2f}% - 1.5px);top:-4px;width:3px;height:16px;'
            f'background:#111;border-radius:1px"></div></div>'
            f'<div style="position:relative;height:1.1rem;font-size:0.7rem;opacity:0.8">{edges}</div>'
            f'<div style="font-size:0.75rem;opacity:0.85">Bands: {key}</div>')


def held_out_costs_ui(threshold: float, split: str | None = None) -> None:
    """Sensitivity, specificity, PPV and NPV at ``threshold`` on ``split`` (the split the Model
    performance page shows, by default), in the sidebar, naming the split."""
    split = split or state.held_out_split()
    point = state.load_held_out(split).at_threshold(threshold)
    st.sidebar.markdown(f"**On the {SPLIT_NAMES[split]}** ({point.n_positive + point.n_negative} images):")
    left, right = st.sidebar.columns(2)
    left.metric("Sensitivity", percent(point.sensitivity), help="Fractures called a fracture")
    right.metric("Specificity", percent(point.specificity), help="Normals called normal")
    left.metric("PPV", percent(point.ppv), help="Of the images called a fracture, how many are")
    right.metric("NPV", percent(point.npv), help="Of the images called normal, how many are")
    st.sidebar.caption(describe_costs(point).capitalize() + ".")  # the sidebar's last caption (tests/e2e)


def uploads_ui(page: str, label: str) -> list[state.Upload]:
    """The uploader of ``page`` and a button that clears its images; returns every image the
    session holds on that page (kept across page switches, see :func:`ui.state.uploads`)."""
    # No extension filter: DICOM often comes without one, and the reader decides by content.
    st.file_uploader(label, accept_multiple_files=True, **state.uploader_kwargs(page))
    held = state.uploads(page)
    if held:
        st.button("Clear the image" if len(held) == 1 else f"Clear all {len(held)} images",
                  on_click=state.clear_uploads, args=(page,), icon=":material/delete:")
    return held


def heatmap_method_select(key: str, help_text: str, container=st) -> str:
    """The heatmap method select box in ``container``: the methods this model can draw, starting on
    its default heatmap (the one each upload already has)."""
    methods = state.heatmap_methods()
    return container.selectbox("Heatmap method", methods, index=methods.index(state.default_heatmap()),
                               format_func=METHODS.get, key=key, help=help_text)


def localisation_sentence(measured: Mapping[str, PointingFigures], method: str) -> str:
    """How far to trust ``method``'s heatmap: the pointing game of ``python -m training.localisation``
    for that method, or, where it was not measured, for a method that was (saying so); empty where
    nothing was measured."""
    figures = measured.get(method) or next(iter(measured.values()), None)
    if figures is None or not figures.n_images:
        return ""
    found = (f"its peak fell inside the radiologists' box in {figures.peak_inside_box} ({figures.hit_rate:.0%}) "
             f"of {figures.n_images} fractured {figures.split} images")
    if figures.method == method:
        return f"How far to trust {METHODS[method]}: {found}."
    return f"How far to trust it: not measured for {METHODS[method]}; for {METHODS[figures.method]}, {found}."


def band_alert(band: str, body: str) -> None:
    """``body`` in the band's alert: red for fracture, amber for doubt, green for no fracture."""
    alert, icon = BAND_ALERTS[band]
    alert(body, icon=icon)


def radiograph_notice_ui(check: RadiographCheck) -> None:
    """Tier 1 of the radiograph check as a warning (the verdict is meaningless), tier 2 as a quieter
    caution (a real X-ray unlike the training images); nothing for an ordinary radiograph."""
    if not check.looks_like_radiograph:
        st.warning(check.warning(), icon=":material/warning:")
    elif check.unlike_training_data:
        st.info(check.caution(), icon=":material/info:")
