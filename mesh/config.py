"""Configuration of every service, read from the environment variables API.md documents."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

FEEDS = ("simulator", "replay", "manual", "binance", "backpack")
INTERNAL_TOKEN_FILE = "internal_token"
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_MAX_DEMO_BALANCE = Decimal("1000000000")
_ORIGIN = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:\d{1,5})?)$")


_SWITCH_VALUES = {
    **dict.fromkeys(("", "0", "false", "no", "off"), False),
    **dict.fromkeys(("1", "true", "yes", "on"), True),
}


class ConfigError(ValueError):
    """An environment variable has a value the services cannot run with."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a service needs to know about its environment."""

    data_dir: Path
    database_url: str | None
    redis_url: str | None
    feed: str
    engine_port: int
    market_port: int
    account_port: int
    edge_port: int
    envoy_port: int
    envoy_admin_port: int
    engine_addr: str
    market_addr: str
    account_addr: str
    demo_balance: str
    internal_token: str
    log_level: str
    bind_host: str
    # Whether trading calls that take on exposure need a user with a verified email.
    require_email_verification: bool = False
    # Which engine shard this process serves or records (the history tables are shared).
    engine_shard: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings, creating the data directory and the internal token if needed."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("CFD_DATA_DIR", "./var")).expanduser().resolve()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"CFD_DATA_DIR={data_dir} cannot be created: {exc}") from exc
        ports = {
            name: _port(env, var, default)
            for name, var, default in (
                ("engine", "CFD_ENGINE_PORT", 50051),
                ("market", "CFD_MARKET_PORT", 50052),
                ("account", "CFD_ACCOUNT_PORT", 50053),
                ("edge", "CFD_EDGE_PORT", 8000),
                ("envoy", "CFD_ENVOY_PORT", 8080),
                ("envoy_admin", "CFD_ENVOY_ADMIN_PORT", 9901),
            )
        }
        feed = env.get("CFD_FEED", "simulator").strip().lower()
        if feed not in FEEDS:
            raise ConfigError(f"CFD_FEED={feed!r} is not one of {', '.join(FEEDS)}")
        return cls(
            data_dir=data_dir,
            database_url=_database_url(env.get("CFD_DATABASE_URL", "")),
            redis_url=_redis_url(env.get("CFD_REDIS_URL", "")),
            feed=feed,
            engine_port=ports["engine"],
            market_port=ports["market"],
            account_port=ports["account"],
            edge_port=ports["edge"],
            envoy_port=ports["envoy"],
            envoy_admin_port=ports["envoy_admin"],
            engine_addr=_addr(env, "CFD_ENGINE_ADDR", ports["engine"]),
            market_addr=_addr(env, "CFD_MARKET_ADDR", ports["market"]),
            account_addr=_addr(env, "CFD_ACCOUNT_ADDR", ports["account"]),
            demo_balance=_demo_balance(env.get("CFD_DEMO_BALANCE", "5000")),
            internal_token=_internal_token(env.get("CFD_INTERNAL_TOKEN", ""), data_dir),
            log_level=_log_level(env.get("CFD_LOG_LEVEL", "INFO")),
            bind_host=_bind_host(env.get("CFD_BIND_HOST", "127.0.0.1")),
            require_email_verification=_switch(env, "CFD_REQUIRE_EMAIL_VERIFICATION"),
            engine_shard=env_int(env, "CFD_ENGINE_SHARD", 0, 0, 1 << 20),
        )


def _switch(env: Mapping[str, str], var: str) -> bool:
    raw = env.get(var, "").strip().lower()
    if raw not in _SWITCH_VALUES:
        raise ConfigError(f"{var}={raw!r} must be true or false")
    return _SWITCH_VALUES[raw]


def _port(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{var}={raw!r} is not a port number (1-65535)")
    return int(raw)


def _addr(env: Mapping[str, str], var: str, port: int) -> str:
    raw = env.get(var, "").strip()
    if not raw:
        return f"127.0.0.1:{port}"
    # "ipv4:host:port,host:port": a gRPC target listing a service's replicas in order (an
    # engine and its standby); a channel uses the first that answers.
    listed = raw.removeprefix("ipv4:")
    for part in listed.split(",") if listed != raw else [raw]:
        match = _HOST_PORT.match(part)
        if match is None or not 1 <= int(match.group(2)) <= 65535:
            raise ConfigError(f"{var}={raw!r} is not host:port (or ipv4:host:port,host:port)")
    return raw


def _database_url(raw: str) -> str | None:
    url = raw.strip()
    if not url:
        return None
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
        raise ConfigError(
            "CFD_DATABASE_URL must start with postgresql+psycopg:// or sqlite+aiosqlite://"
        )
    return url


def _redis_url(raw: str) -> str | None:
    url = raw.strip()
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("CFD_REDIS_URL must start with redis://, rediss:// or unix://")
    return url


def _demo_balance(raw: str) -> str:
    text = raw.strip()
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ConfigError(f"CFD_DEMO_BALANCE={raw!r} is not a decimal number") from exc
    exponent = value.as_tuple().exponent
    if not value.is_finite() or not isinstance(exponent, int) or exponent < -6:
        raise ConfigError(f"CFD_DEMO_BALANCE={raw!r} needs at most 6 fraction digits")
    if not Decimal(0) <= value <= _MAX_DEMO_BALANCE:
        raise ConfigError(f"CFD_DEMO_BALANCE={raw!r} must be between 0 and {_MAX_DEMO_BALANCE}")
    return text


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"CFD_LOG_LEVEL={raw!r} is not DEBUG, INFO, WARNING or ERROR")
    return level


def _bind_host(raw: str) -> str:
    host = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", host):
        raise ConfigError(f"CFD_BIND_HOST={raw!r} is not a host name or address")
    return host


def _internal_token(raw: str, data_dir: Path) -> str:
    token = raw.strip()
    if token:
        if len(token) < 16:
            raise ConfigError("CFD_INTERNAL_TOKEN must be at least 16 characters")
        return token
    return stored_secret(data_dir / INTERNAL_TOKEN_FILE)


def stored_secret(path: Path) -> str:
    """Return the secret kept in `path`, generating it (mode 0600) on first use."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first: wait for its content.
        existing = path.read_text().strip()
        if len(existing) >= 16:
            return existing
        raise ConfigError(f"{path} is empty or too short; delete it to regenerate") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token)
        f.flush()
        os.fsync(f.fileno())
    return token


@dataclass(frozen=True, slots=True)
class FrontLimits:
    """Limits both fronts (the edge and Envoy) apply, read from the same variables.

    CFD_CORS_ORIGINS (comma-separated browser origins), CFD_MAX_BODY_BYTES (largest REST
    body), CFD_UPSTREAM_TIMEOUT (seconds per unary upstream call), CFD_RATE_LIMIT_IP and
    CFD_RATE_LIMIT_USER (REST requests per minute per client address and per user).
    """

    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    upstream_timeout_ms: int = 10_000
    rate_limit_ip: int = 1200
    rate_limit_user: int = 600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FrontLimits:
        """Read the limits; unset variables keep the defaults."""
        env = os.environ if env is None else env
        default = cls()
        return cls(
            cors_origins=env_origins(env, "CFD_CORS_ORIGINS"),
            max_body_bytes=env_int(env, "CFD_MAX_BODY_BYTES", default.max_body_bytes, 64, 16 << 20),
            upstream_timeout_ms=env_duration_ms(
                env, "CFD_UPSTREAM_TIMEOUT", default.upstream_timeout_ms
            ),
            rate_limit_ip=env_int(env, "CFD_RATE_LIMIT_IP", default.rate_limit_ip, 1, 1_000_000),
            rate_limit_user=env_int(
                env, "CFD_RATE_LIMIT_USER", default.rate_limit_user, 1, 1_000_000
            ),
        )


def env_int(env: Mapping[str, str], var: str, default: int, low: int, high: int) -> int:
    """Return a whole number from `low` to `high`, or `default` when the variable is unset."""
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ConfigError(f"{var}={raw!r} is not a whole number between {low} and {high}")
    return int(raw)


def env_decimal(
    env: Mapping[str, str],
    var: str,
    default: Decimal,
    low: Decimal,
    high: Decimal,
    unit: str = "",
) -> Decimal:
    """Return a decimal number (of `unit`, when given) from `low` to `high`, or `default` when
    the variable is unset."""
    raw = env.get(var, "").strip()
    if not raw:
        return default
    kind, suffix = (f"number of {unit}", f" {unit}") if unit else ("decimal number", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{var}={raw!r} is not a {kind}") from None
    if not value.is_finite() or not low <= value <= high:
        raise ConfigError(f"{var}={raw!r} must be between {low} and {high}{suffix}")
    return value


def env_duration_ms(
    env: Mapping[str, str], var: str, default_ms: int, low_ms: int = 10, high_ms: int = 3_600_000
) -> int:
    """Return a duration given in (decimal) seconds, as whole milliseconds."""
    low, high = Decimal(low_ms) / 1000, Decimal(high_ms) / 1000
    seconds = env_decimal(env, var, Decimal(default_ms) / 1000, low, high, "seconds")
    return int(seconds * 1000)


def env_origins(env: Mapping[str, str], var: str) -> tuple[str, ...]:
    """Return comma-separated browser origins ('*' or scheme://host[:port])."""
    origins = tuple(o.strip().rstrip("/") for o in env.get(var, "").split(",") if o.strip())
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ConfigError(f"{var}: {origin!r} is not '*' or an origin like http://host:port")
    return origins
