"""Tests for the servicer's client address rule."""

from __future__ import annotations

import pytest

from account_svc.servicer import client_address

TOKEN = "internal-token-0123456789"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("ipv4:127.0.0.1:50432", "127.0.0.1"),
        ("ipv6:[::1]:50432", "::1"),
        ("ipv6:[2001:db8::7]:1", "2001:db8::/64"),
        ("ipv6:[2001:db8:0:1:ffff::9]:1", "2001:db8:0:1::/64"),
        ("ipv6:[::ffff:198.51.100.7]:1", "198.51.100.7"),
        ("unix:/tmp/sock", "unix"),
        ("", "unknown"),
    ],
)
def test_peer_address_without_forwarding(peer: str, expected: str) -> None:
    assert client_address(peer, (), TOKEN) == expected


def test_internal_caller_forwards_the_address_it_saw() -> None:
    metadata = (("x-cfd-internal-token", TOKEN), ("x-forwarded-for", "203.0.113.9"))
    assert client_address("ipv4:127.0.0.1:1", metadata, TOKEN) == "203.0.113.9"


def test_only_the_last_forwarded_entry_counts() -> None:
    # Earlier entries come from the browser and could be anything.
    metadata = (("x-cfd-internal-token", TOKEN), ("x-forwarded-for", "1.2.3.4, 203.0.113.9"))
    assert client_address("ipv4:127.0.0.1:1", metadata, TOKEN) == "203.0.113.9"


@pytest.mark.parametrize(
    "metadata",
    [
        (("x-forwarded-for", "203.0.113.9"),),
        (("x-cfd-internal-token", "wrong-token-0123456789"), ("x-forwarded-for", "203.0.113.9")),
        (("x-cfd-internal-token", TOKEN), ("x-forwarded-for", "not-an-ip")),
        (("x-cfd-internal-token", TOKEN), ("x-forwarded-for", "")),
    ],
)
def test_untrusted_or_malformed_forwarding_is_ignored(
    metadata: tuple[tuple[str, str], ...],
) -> None:
    assert client_address("ipv4:198.51.100.2:9", metadata, TOKEN) == "198.51.100.2"


def test_an_ipv6_client_counts_as_its_64_network() -> None:
    # Stepping through the addresses of one's own /64 lands in the same rate limit bucket.
    buckets = {
        client_address(
            "ipv4:127.0.0.1:1",
            (("x-cfd-internal-token", TOKEN), ("x-forwarded-for", f"2001:db8:aa:bb::{n:x}")),
            TOKEN,
        )
        for n in range(1, 50)
    }
    assert buckets == {"2001:db8:aa:bb::/64"}
