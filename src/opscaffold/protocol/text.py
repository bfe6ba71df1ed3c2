"""What a text field on the wire may hold: the Manager refuses a message with a NUL character
in any string (no database it writes to can store one), so a daemon cleans free text it did
not write itself (an agent's stderr, an error's message) before sending it."""

from __future__ import annotations


def wire_text(text: str) -> str:
    """`text` without NUL characters."""
    return text.replace("\x00", "")
