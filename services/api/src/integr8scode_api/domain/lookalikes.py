"""Usernames that look alike: a confusable *skeleton* in the spirit of Unicode TR39.

Two names look alike when their skeletons are equal. ``normalize_username`` has already folded
width and compatibility forms (NFKC) and case and refused everything outside ``[a-z0-9_.-]``,
so a Cyrillic letter never gets this far; what is left to fold are the look-alikes *inside* that
alphabet. ``_PROTOTYPES`` holds TR39's confusables among those characters (``0`` → ``o``,
``1`` → ``l``, ``m`` → ``rn``, as in the confusables data the ``confusable-homoglyphs`` package
ships) plus one sequence attackers use that TR39 leaves out (``w`` → ``vv``).
Between two users ``i`` → ``l`` is deliberately not folded: names are shown in lower case,
where ``i`` has its dot, and folding it would make ``alien`` a twin of ``allen``. Against the
reserved names it is (``adm1n``, ``adrnln`` are refused): a false alarm there costs nothing.
"""

from __future__ import annotations

import unicodedata

_PROTOTYPES = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "m": "rn",
        "w": "vv",
    }
)

# Names nobody may register, nor anything that looks like them: they read as the platform
# speaking. The bootstrap admin's configured name is added to these by the service.
RESERVED_USERNAMES = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "system",
        "support",
        "security",
        "integr8scode",
    }
)


def skeleton(name: str) -> str:
    """The form two look-alike names share: NFKC, case-folded, each character mapped to its
    prototype, decomposed (NFD), case-folded again (a prototype may be upper case in TR39)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    mapped = unicodedata.normalize("NFD", folded.translate(_PROTOTYPES))
    return mapped.casefold()


_STRICTER = str.maketrans({"i": "l"})


def _reserved_skeleton(name: str) -> str:
    return skeleton(name).translate(_STRICTER)


def reserved_skeletons(names: frozenset[str]) -> frozenset[str]:
    """The (stricter) skeletons of ``names``, for ``looks_reserved``."""
    return frozenset(_reserved_skeleton(n) for n in names)


def looks_reserved(name: str, reserved: frozenset[str]) -> bool:
    """Whether ``name`` is, or looks like, one of the names whose skeletons are ``reserved``
    (folding ``i`` with ``l`` and ``1`` too)."""
    return _reserved_skeleton(name) in reserved
