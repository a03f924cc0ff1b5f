"""Outside text made safe to show: nothing in it acts on a terminal or hides what follows.

Text the hub did not write itself (an authority's code or record id, a reason stored in
the log, an error an authority answered with) may hold characters a terminal acts on
instead of showing: an escape sequence (``ESC [2J`` clears the screen, ``ESC ]0;…BEL``
retitles the window, ``ESC ]8;;URL`` makes a link), a carriage return or backspaces that
overwrite what the line said, a bidi override (U+202E) that shows the rest of a line
backwards, zero-width characters, a NUL, lone surrogates. :func:`shown` writes each such
character as a visible escape (``\\x1b``, ``\\u202e``), so staff see that it is there and
what it is, and nothing else changes; :func:`shown_json` does the same for JSON text, with
JSON's own escapes, so the JSON still decodes to the same value.

A character counts as safe exactly when Python's :meth:`str.isprintable` says so: letters
of every script (å, ä, ö), digits, punctuation, symbols and the plain space are; control
characters (C0, DEL, C1), format characters (bidi controls, zero-width joiners and
spaces), line and paragraph separators, other spaces, surrogates, private-use and
unassigned code points are not.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE = re.compile(r"[^\x20-\x7e]")
"""Characters that need a closer look: anything but printable ASCII (the usual case is
answered by one regular-expression search)."""


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: a surrogate pair, as JSON writes it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _replace(text: str, escape: Any, keep: str = "") -> str:
    return "".join(c if c.isprintable() or c in keep else escape(c) for c in text)


def shown(value: Any) -> str:
    """``value`` as text (``None`` as empty) with every character that is not printable
    written as a visible escape (``\\x1b``, ``\\u202e``); printable text is returned as is."""
    if value is None:
        return ""
    text = str(value)
    if not _UNSAFE.search(text) or text.isprintable():
        return text
    return _replace(text, _escape)


def shown_lines(text: str) -> str:
    """Like :func:`shown` for text of several lines the hub laid out itself: its line
    breaks are kept, every other character that is not printable is escaped."""
    if not _UNSAFE.search(text.replace("\n", " ")) or text.replace("\n", " ").isprintable():
        return text
    return _replace(text, _escape, keep="\n")


def shown_json(text: str) -> str:
    """JSON text (as :func:`json.dumps` writes it with ``ensure_ascii=False``) with every
    character that is not printable written as a JSON ``\\uXXXX`` escape: the same JSON
    value, safe on a terminal. Line breaks between values (``indent``) are kept; inside a
    string JSON has already escaped them."""
    flat = text.replace("\n", " ")
    if not _UNSAFE.search(flat) or flat.isprintable():
        return text
    return _replace(text, _json_escape, keep="\n")
