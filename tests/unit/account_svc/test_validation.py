"""Tests for email normalization and password rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from account_svc.validation import (
    check_new_password,
    check_password,
    normalize_email,
    require_credentials,
)
from mesh.errors import ApiError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice.Smith@Example.COM \t", "alice.smith@example.com"),
        ("bob+trading@mail.example.co.uk", "bob+trading@mail.example.co.uk"),
        ("x_y-z@sub-domain.example.io", "x_y-z@sub-domain.example.io"),
        ("a@b.cd", "a@b.cd"),
    ],
)
def test_valid_emails_are_normalized(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "al ice@example.com",
        "alice@exa mple.com",
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "alice@-example.com",
        "alice@example-.com",
        "alice@example..com",
        "alice@example.c",
        "alice@example.123",
        "alice@example.com\x00",
        "ali\nce@example.com",
        "alicé@example.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
        "<alice@example.com>",
    ],
)
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(ApiError) as info:
        normalize_email(raw)
    assert info.value.reason == "VALIDATION_FAILED"
    assert [field for field, _ in info.value.violations] == ["email"]


@pytest.mark.parametrize("password", ["12345678", "x" * 128, "pässwörd", "        "])
def test_passwords_of_8_to_128_characters_are_accepted(password: str) -> None:
    check_password(password)


@pytest.mark.parametrize("password", ["", "1234567", "x" * 129, "x" * 10_000])
def test_passwords_outside_8_to_128_characters_are_refused(password: str) -> None:
    with pytest.raises(ApiError) as info:
        check_password(password)
    assert info.value.reason == "VALIDATION_FAILED"
    assert [field for field, _ in info.value.violations] == ["password"]


def test_require_credentials_reports_both_fields() -> None:
    with pytest.raises(ApiError) as info:
        require_credentials("nope", "short")
    assert [field for field, _ in info.value.violations] == ["email", "password"]


def test_require_credentials_returns_the_normalized_email() -> None:
    assert require_credentials(" Bob@Example.com", "secret-pw") == ("bob@example.com", "secret-pw")


@given(
    email=st.from_regex(
        r"\A[a-zA-Z0-9_+-]{1,12}(\.[a-zA-Z0-9]{1,6}){0,2}@[a-zA-Z0-9]{1,12}\.[a-zA-Z]{2,6}\Z"
    ),
    padding=st.sampled_from(["", " ", "\t", "  \n"]),
)
def test_normalization_is_case_and_space_insensitive_and_idempotent(
    email: str, padding: str
) -> None:
    normalized = normalize_email(padding + email.upper() + padding)
    assert normalized == email.lower()
    assert normalize_email(normalized) == normalized


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("\x01" * 8, "must not contain control characters"),
        ("\x00\x01\x02\x03\x04\x05\x06\x07\x08", "must not contain control characters"),
        ("long enough\x7f", "must not contain control characters"),
        ("long enough\x85", "must not contain control characters"),
        ("line one\nline two", "must not contain control characters"),
        (" " * 12, "must not be only spaces"),
        ("Password1", "is too common; choose a less guessable password"),
        ("qwerty123", "is too common; choose a less guessable password"),
        ("  iloveyou  ", "is too common; choose a less guessable password"),
        ("1q2w3e4r5t", "is too common; choose a less guessable password"),
        ("Alice.Smith", "must not be the email address or its local part"),
        ("alice.smith@example.com", "must not be the email address or its local part"),
    ],
)
def test_weak_new_passwords_are_refused_with_the_reason(password: str, message: str) -> None:
    with pytest.raises(ApiError) as info:
        check_new_password(password, "alice.smith@example.com")
    assert info.value.reason == "VALIDATION_FAILED"
    assert info.value.violations == (("password", message),)


@pytest.mark.parametrize(
    "password", ["correct horse battery", "pässwörd über alles", "Tr0ub4dor&3x", "x" * 128]
)
def test_reasonable_new_passwords_are_accepted(password: str) -> None:
    check_new_password(password, "alice.smith@example.com")


def test_sign_up_uses_the_new_password_rules() -> None:
    with pytest.raises(ApiError) as info:
        require_credentials("Bob@Example.com", "BOB@example.com")
    assert info.value.violations == (
        ("password", "must not be the email address or its local part"),
    )
    with pytest.raises(ApiError) as info:
        require_credentials("bad", "\x02" * 9)
    assert [field for field, _ in info.value.violations] == ["email", "password"]


def test_sign_in_still_takes_a_password_set_under_an_older_policy() -> None:
    # Only the length is bounded: a stored password is checked by its hash, not by the rules.
    check_password("password1")
