"""Normalize and validate the credentials users send.

Every path that sets a password (sign-up today; any password change or reset) goes through
``check_new_password``; sign-in only bounds the length, so that a password chosen under an
older policy still signs in.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources
from typing import Final

from mesh.errors import ApiError, validation_error

MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 128
MAX_EMAIL_LENGTH: Final = 254
MAX_LOCAL_PART_LENGTH: Final = 64

# The practical subset of RFC 5321 addresses that mail providers accept: dot-atom local
# part, DNS host name with at least two labels.
_LOCAL_PART: Final = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL: Final = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_TLD: Final = re.compile(r"(?=.*[a-z])[a-z0-9-]{2,63}")


def normalize_email(raw: str) -> str:
    """Return the trimmed, lower-cased email, or raise VALIDATION_FAILED on field ``email``."""
    email = raw.strip().lower()
    if not email:
        raise validation_error("email", "is required")
    if len(email) > MAX_EMAIL_LENGTH:
        raise validation_error("email", f"must be at most {MAX_EMAIL_LENGTH} characters")
    local, at, domain = email.rpartition("@")
    if not at or not _valid_local_part(local) or not _valid_domain(domain):
        raise validation_error("email", "is not a valid email address")
    return email


def _valid_local_part(local: str) -> bool:
    return 0 < len(local) <= MAX_LOCAL_PART_LENGTH and _LOCAL_PART.fullmatch(local) is not None


def _valid_domain(domain: str) -> bool:
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    *names, tld = labels
    return all(_LABEL.fullmatch(name) for name in names) and _TLD.fullmatch(tld) is not None


def check_password(password: str) -> None:
    """Raise VALIDATION_FAILED on field ``password`` unless it has 8 to 128 characters."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise validation_error(
            "password",
            f"must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
        )


# Control characters (C0, DEL, C1) and lone surrogates: invisible, and typed differently or
# not at all on other keyboards and devices.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cs"})


@functools.cache
def common_passwords() -> frozenset[str]:
    """Return the shipped list of commonly used passwords, lower-cased."""
    text = resources.files("account_svc").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_new_password(password: str, email: str) -> None:
    """Raise VALIDATION_FAILED on field ``password`` unless it is fit to be set for ``email``.

    It needs 8 to 128 characters, no control characters, and must be neither a commonly
    used password nor the email address or its local part (compared case-insensitively).
    """
    check_password(password)
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in password):
        raise validation_error("password", "must not contain control characters")
    folded = password.strip().lower()
    if not folded:
        raise validation_error("password", "must not be only spaces")
    if folded in common_passwords():
        raise validation_error("password", "is too common; choose a less guessable password")
    address = email.strip().lower()
    if folded in {address, address.rpartition("@")[0]}:
        raise validation_error("password", "must not be the email address or its local part")


def require_credentials(email: str, password: str) -> tuple[str, str]:
    """Validate both fields for a new password, reporting every violation; return the pair."""
    violations: list[tuple[str, str]] = []
    normalized = ""
    try:
        normalized = normalize_email(email)
    except ApiError as exc:
        violations.extend(exc.violations)
    try:
        check_new_password(password, normalized or email)
    except ApiError as exc:
        violations.extend(exc.violations)
    if violations:
        message = "; ".join(f"{field}: {description}" for field, description in violations)
        raise ApiError("VALIDATION_FAILED", message, violations)
    return normalized, password
