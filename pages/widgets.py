"""Pieces of layout more than one page draws: the threshold sidebar and text shown as typed."""

from __future__ import annotations

import re

import streamlit as st

from core.heldout import describe_costs
from core.thresholds import PRESETS
from pages import state

SLIDER_LABEL = "P(fractured) at or above this is called a fracture"

# Every ASCII character that CommonMark, Streamlit's colour/icon directives (":red[…]",
# ":material/…:") or its LaTeX ("$…$") give a meaning; a backslash makes each one literal.
# "&" starts an HTML entity ("a&copy;b.jpg" would show as "a©b.jpg"); "\&" is a literal "&".
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$/&])")


def markdown_literal(text: str) -> str:
    """``text`` escaped so that Streamlit's markdown shows it as typed (file names, messages quoting a file)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def threshold_sidebar() -> float:
    """The decision threshold (presets and slider) and what it costs on the test split.

    Returns:
        The session's threshold, unrounded: a preset's stored value or the slider's.
    """
    thresholds = state.load_thresholds()
    current = state.threshold()
    active = thresholds.preset_at(current)
    st.sidebar.subheader("Decision threshold")
    for preset in PRESETS:
        value = thresholds[preset.name]
        st.sidebar.button(f"{preset.label} · {value:.3f}", key=f"preset-{preset.name}",
                          help=preset.rule[:1].upper() + preset.rule[1:], on_click=state.set_threshold,
                          args=(value,), type="primary" if preset.name == active else "secondary",
                          width="stretch")
    st.sidebar.slider(SLIDER_LABEL, 0.0, 1.0, step=0.001, format="%.3f", **state.bind_threshold_slider())
    active_label = next((preset.label for preset in PRESETS if preset.name == active), None)
    st.sidebar.markdown(f"Preset: **{active_label}**" if active_label else "Custom threshold (no preset)")
    held_out_costs_ui(current)
    return current


def held_out_costs_ui(threshold: float) -> None:
    point = state.load_held_out().at_threshold(threshold)
    st.sidebar.markdown(f"**On the held-out test split** ({point['n_positive'] + point['n_negative']} images):")
    left, right = st.sidebar.columns(2)
    left.metric("Sensitivity", percent(point["sensitivity"]))
    right.metric("Specificity", percent(point["specificity"]))
    left.metric("PPV", percent(point["ppv"]))
    right.metric("NPV", percent(point["npv"]))
    st.sidebar.caption(describe_costs(point).capitalize() + ".")  # the sidebar's last caption (tests/e2e)
