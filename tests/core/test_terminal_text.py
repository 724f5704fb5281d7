"""Tests for core.terminal_text: what a terminal would act on is escaped, the rest left as typed."""

import os

import pytest

from core.terminal_text import terminal_safe


def test_ordinary_names_are_left_alone():
    for name in ("a.png", "C:\\scans\\x.png", "röntgen 1 (copy).dcm", "x*ray*_[1]_$2$.jpg", "日本語.png"):
        assert terminal_safe(name) == name


@pytest.mark.parametrize("text, escaped", [
    ("a\nb\r\tc", "a\\nb\\r\\tc"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # an OSC title and BEL
    ("c1\x9b31m del\x7f nul\x00", "c1\\x9b31m del\\x7f nul\\x00"),
    ("sep\u2028par\u2029", "sep\\u2028par\\u2029"),
    ("rtl\u202egnp.png", "rtl\\u202egnp.png"),
])
def test_controls_separators_and_bidi_overrides_are_escaped(text, escaped):
    assert terminal_safe(text) == escaped


def test_the_bytes_of_a_name_that_is_not_utf8_are_shown_as_bytes():
    assert terminal_safe(os.fsdecode(b"latin1-\xe9t\xe9.png")) == "latin1-\\xe9t\\xe9.png"
