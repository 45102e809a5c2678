"""Text from case files and engines made safe to show: control characters appear as escapes, never act.

An engine's message or a case's title may hold ESC (a terminal escape sequence that recolours, moves the cursor,
retitles the window or worse), NUL, a carriage return that overwrites the line before it, or their 8-bit forms
(C1, such as U+009B, a one-character CSI). Printed raw to a terminal, written into Markdown or HTML, they act.
`shown` keeps line breaks and tabs, and writes every other control as `\\x1b`-style text.
"""

from __future__ import annotations

_KEPT = {"\n", "\t"}
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if chr(code) not in _KEPT}


def shown(text: object) -> str:
    """`text` with each control character but newline and tab written as an escape (a CRLF line end as a newline)."""
    return str(text).replace("\r\n", "\n").translate(_ESCAPES)
