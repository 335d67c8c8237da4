"""Normalize and validate the credentials users send."""

from __future__ import annotations

import re
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


def require_credentials(email: str, password: str) -> tuple[str, str]:
    """Validate both fields at once, reporting every violation; return the normalized pair."""
    violations: list[tuple[str, str]] = []
    normalized = ""
    try:
        normalized = normalize_email(email)
    except ApiError as exc:
        violations.extend(exc.violations)
    try:
        check_password(password)
    except ApiError as exc:
        violations.extend(exc.violations)
    if violations:
        message = "; ".join(f"{field}: {description}" for field, description in violations)
        raise ApiError("VALIDATION_FAILED", message, violations)
    return normalized, password
