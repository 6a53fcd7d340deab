"""The look-alike skeleton of usernames."""

from __future__ import annotations

import pytest

from integr8scode_api.domain.lookalikes import (
    RESERVED_USERNAMES,
    looks_reserved,
    reserved_skeletons,
    skeleton,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("bob", "b0b"),  # digit zero, letter o
        ("paul", "pau1"),  # digit one, letter l
        ("mallory", "rnallory"),  # r n, m
        ("walter", "vvalter"),  # v v, w
        ("Alice", "alice"),  # case
        ("\uff41\uff4c\uff49\uff43\uff45", "alice"),  # full-width forms (NFKC)
        ("ﬁona", "fiona"),  # ligature (NFKC)
        ("M1M0", "rnlrno"),  # several at once
    ],
)
def test_look_alikes_share_a_skeleton(a: str, b: str) -> None:
    assert skeleton(a) == skeleton(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("alien", "allen"), ("bob", "rob"), ("a.b", "a_b"), ("anna", "arma"), ("x1", "xi")],
)
def test_different_names_keep_different_skeletons(a: str, b: str) -> None:
    assert skeleton(a) != skeleton(b)


def test_the_skeleton_is_idempotent() -> None:
    for name in ("b0b", "rnallory", "walter", "pau1"):
        assert skeleton(skeleton(name)) == skeleton(name)


@pytest.mark.parametrize(
    "name", ["admin", "ADMIN", "adm1n", "admln", "adrnin", "r00t", "systern", "supp0rt"]
)
def test_reserved_names_and_their_look_alikes_are_caught(name: str) -> None:
    assert looks_reserved(name, reserved_skeletons(RESERVED_USERNAMES))


# A 5 is not an s (leetspeak, not a look-alike): allowed.
@pytest.mark.parametrize("name", ["alice", "adminton", "rooted", "admiral", "sys", "5ystem"])
def test_other_names_are_not_reserved(name: str) -> None:
    assert not looks_reserved(name, reserved_skeletons(RESERVED_USERNAMES))
