"""The one form of a username that lookups, uniqueness and the login throttle compare.

Usernames are created from a safe ASCII set, but a login may name an account in any spelling.
Databases disagree on what is "the same" name (MariaDB's default collation equates `victim`,
`Victim`, `vìctim`, `vıctim` and `victim `; SQLite and PostgreSQL equate none of them), so the
comparison is decided here, in Python, and the database compares the result byte for byte.
"""

from __future__ import annotations

import unicodedata

# Letters that neither case folding nor decomposition maps to their Latin look-alike.
_LOOKALIKES = str.maketrans({"ı": "i", "ĸ": "k", "ø": "o", "đ": "d", "ħ": "h", "ł": "l"})


def canonical_username(name: str) -> str:
    """Case-folded, compatibility-normalised, without accents, invisible characters or the
    blanks around it: every spelling a person would read as the same name gives one value."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name).casefold())
    kept = "".join(
        c
        for c in folded
        if not unicodedata.combining(c) and unicodedata.category(c) not in ("Cf", "Cc")
    )
    return unicodedata.normalize("NFKC", kept.translate(_LOOKALIKES)).strip()
