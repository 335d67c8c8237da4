"""What the browser tests share: the running mesh handle and page helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import grpc
from playwright.sync_api import Locator, Page, expect

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc, market_admin_pb2, market_admin_pb2_grpc

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct-horse-battery"

# Price levels the market maker keeps on each side of every spot book in the browser tests.
MAKER_LEVELS = 5

@dataclass(frozen=True)
class Mesh:
    """A running mesh: its environment, the edge's URL and a way to move prices exactly."""

    env: dict[str, str]
    base_url: str

    def publish(self, symbol: str, bid: str, ask: str) -> None:
        """Publish one exact quote through the manual feed (MarketDataAdminService)."""
        target = f"127.0.0.1:{self.env['CFD_MARKET_PORT']}"
        with grpc.insecure_channel(target) as channel:
            stub = market_admin_pb2_grpc.MarketDataAdminServiceStub(channel)
            stub.PublishTicks(
                market_admin_pb2.PublishTicksRequest(
                    ticks=[market_admin_pb2.TickInput(symbol=symbol, bid=bid, ask=ask)]
                ),
                metadata=self._internal(),
                timeout=10,
            )

    def deposit_asset(self, user_id: str, asset: str, amount: str) -> None:
        """Credit a base asset to an account's spot wallet (EngineAdminService.DepositAsset)."""
        target = f"127.0.0.1:{self.env['CFD_ENGINE_PORT']}"
        with grpc.insecure_channel(target) as channel:
            stub = engine_admin_pb2_grpc.EngineAdminServiceStub(channel)
            stub.DepositAsset(
                engine_admin_pb2.DepositAssetRequest(user_id=user_id, asset=asset, amount=amount),
                metadata=self._internal(),
                timeout=10,
            )

    def _internal(self) -> tuple[tuple[str, str], ...]:
        return (("x-cfd-internal-token", self.env["CFD_INTERNAL_TOKEN"]),)


def unique_email() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}@example.com"


def sign_up(page: Page, email: str | None = None) -> str:
    """Create an account through the sign-up form and wait for the trading screen."""
    address = email or unique_email()
    page.goto("/")
    page.get_by_test_id("auth-mode-signup").click()
    page.get_by_test_id("auth-email").fill(address)
    page.get_by_test_id("auth-password").fill(PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    return address


def number(text: str) -> Decimal:
    """Read a displayed figure ("1,234.50", "+2.5", "10×") as an exact decimal."""
    cleaned = text.replace(",", "").replace("×", "").replace("%", "").replace("+", "").strip()
    return Decimal(cleaned)


def shown(value: Decimal, digits: int = 2) -> str:
    """Format a price the way the page does: grouped, at least `digits` fraction digits."""
    exponent = value.normalize().as_tuple().exponent
    places = max(digits, -exponent if isinstance(exponent, int) else 0)
    return f"{value:,.{places}f}"


def cents(value: Decimal) -> str:
    """Format money the way the page shows it: grouped, to the cent, halves away from zero."""
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def expect_money(figure: Locator, value: Decimal) -> None:
    """Check a money figure: shown to the cent, the exact amount on hover."""
    expect(figure).to_have_text(cents(value))
    expect(figure).to_have_attribute("title", shown(value))
