"""Text for a terminal: file names and error messages printed so that they cannot act on it.

A file name is chosen by whoever made the file: printed raw, a newline in it could forge a verdict
line and an escape sequence could retitle or recolour the terminal. ``python -m core.predict``
prints every name and message it shows through :func:`terminal_safe`, and the serving commands
do the same in their usage errors.
"""

from __future__ import annotations

import unicodedata

# Characters a terminal acts on instead of showing: C0 and C1 controls and DEL (category Cc:
# newline, CR, ESC of ANSI/OSC sequences, BEL), line and paragraph separators, lone surrogates
# (Cs: unprintable), and the bidirectional overrides that reorder how the rest of a line reads
# ("Trojan Source").
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def terminal_safe(text: str) -> str:
    """``text`` for a terminal, every character it would act on written as an escape.

    As ``ls -b`` does: ``\\n``, ``\\r``, ``\\t``, ``\\xNN`` for other controls and for the bytes of a
    file name that is not valid UTF-8 (Python holds them as lone surrogates, which printing
    would refuse), ``\\uNNNN`` for separators and bidi controls. Backslashes are left alone,
    unlike ``ls -b``: a Windows path prints as typed, and a name that spells ``\\n`` still
    cannot break the line.
    """
    return "".join(_escaped(character) for character in text)


def _escaped(character: str) -> str:
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(character) in _UNSAFE_CATEGORIES or character in _BIDI_CONTROLS:
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
    return character
