"""The rules a username and a password must follow."""

from __future__ import annotations

import pytest

from integr8scode_api.domain.errors import ValidationFailedError
from integr8scode_api.domain.users import Role, User, check_password, normalize_username


@pytest.mark.parametrize("name", ["abc", "A.b-c_9", "x" * 32])
def test_valid_usernames_are_kept_in_lower_case(name: str) -> None:
    assert normalize_username(name) == name.lower()


@pytest.mark.parametrize("name", ["ab", "x" * 33, "has space", "émile", "semi;colon", ""])
def test_invalid_usernames_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ValidationFailedError, match="3-32 characters"):
        normalize_username(name)


@pytest.mark.parametrize("password", ["x" * 8, "y" * 128])
def test_passwords_within_bounds_pass(password: str) -> None:
    assert check_password(password, strength=False) == password


@pytest.mark.parametrize(
    "password", ["password1", "qwertyuiop", "12345678", "aaaaaaaaaaaa", "iloveyou2"]
)
def test_common_and_easy_passwords_are_refused_with_why(password: str) -> None:
    with pytest.raises(ValidationFailedError, match="too easy to guess"):
        check_password(password)


def test_the_username_is_not_a_password() -> None:
    with pytest.raises(ValidationFailedError, match="must not be the username"):
        check_password("Alice.Smith", "alice.smith")
    with pytest.raises(ValidationFailedError, match="too easy to guess"):
        check_password("alicesmith1", "alicesmith")  # the username with a digit


@pytest.mark.parametrize("password", ["Sturdy-Lantern-41", "correct horse battery staple"])
def test_passwords_hard_to_guess_pass(password: str) -> None:
    assert check_password(password, "alice") == password


@pytest.mark.parametrize("password", ["x" * 7, "y" * 129, ""])
def test_passwords_out_of_bounds_are_refused(password: str) -> None:
    with pytest.raises(ValidationFailedError, match="8-128 characters"):
        check_password(password)


def test_validation_failed_is_a_value_error_so_pydantic_validators_can_raise_it() -> None:
    assert issubclass(ValidationFailedError, ValueError)


def test_new_user_has_an_id_an_aware_timestamp_and_no_hash_in_its_repr() -> None:
    user = User.new("alice", "secret-hash")
    assert user.role is Role.USER
    assert len(user.id) == 32
    assert user.created_at.tzinfo is not None
    assert "secret-hash" not in repr(user)
