"""The accounts service's Prometheus metrics (no user ids or emails as labels)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SIGNUPS = Counter("cfd_accounts_signups", "Users created by sign-up.")
SIGNINS = Counter(
    "cfd_accounts_signins", "Sign-in attempts by result (ok, invalid_credentials).", ["result"]
)
RATE_LIMITED = Counter(
    "cfd_accounts_rate_limited",
    "Attempts refused by a rate limit, by action (signup, signin, refresh, email, mail) and key "
    "(address, email, user).",
    ["action", "key"],
)

OUTBOX_DEPTH = Gauge(
    "cfd_accounts_outbox_depth",
    "Entries waiting in an outbox: email (messages not yet sent) or signup (trading accounts "
    "not yet confirmed by the engine).",
    ["outbox"],
)
EMAILS_SENT = Counter("cfd_accounts_emails_sent", "Emails the mail server (or file sink) took.")


def refused(limit_key: str) -> None:
    """Count a refusal of the rate-limit key `action:kind:value` (the value is not a label)."""
    parts = limit_key.split(":", 2)
    RATE_LIMITED.labels(parts[0], parts[1] if len(parts) == 3 else "").inc()
