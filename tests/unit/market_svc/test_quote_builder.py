from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market_svc.instruments import Instruments
from market_svc.quotes import QuoteBuilder, QuoteSettings, parse_decimal
from market_svc.ticks import RawTick

INSTRUMENTS = Instruments()


def builder(**settings: object) -> QuoteBuilder:
    return QuoteBuilder(INSTRUMENTS, QuoteSettings(**settings), first_sequence=1)  # type: ignore[arg-type]


def test_default_spread_is_ten_bps_of_the_mid_rounded_outwards() -> None:
    quote = builder().build(RawTick("BTCUSD", time_ns=1, price="100000"))
    assert quote is not None
    # Half spread is 5 bps of 100000 = 50.
    assert (quote.bid, quote.ask) == (Decimal("99950.00"), Decimal("100050.00"))


def test_bid_rounds_down_and_ask_rounds_up_to_tick() -> None:
    quote = builder().build(RawTick("SOLUSD", time_ns=1, price="182.5003"))
    assert quote is not None
    # Half spread 0.09125015: 182.40904985 -> 182.409, 182.59155015 -> 182.592.
    assert (quote.bid, quote.ask) == (Decimal("182.409"), Decimal("182.592"))


def test_book_sources_keep_their_own_spread_plus_ours() -> None:
    quote = builder(spread_bps=Decimal(2)).build(
        RawTick("ETHUSD", time_ns=1, bid="3000.00", ask="3000.10")
    )
    assert quote is not None
    # Half spread = 3000.05 * 1 bp = 0.300005.
    assert (quote.bid, quote.ask) == (Decimal("2999.69"), Decimal("3000.41"))


def test_zero_spread_on_tick_still_has_bid_below_ask() -> None:
    quote = builder(spread_bps=Decimal(0)).build(RawTick("BTCUSD", time_ns=1, price="100.00"))
    assert quote is not None
    assert (quote.bid, quote.ask) == (Decimal("100.00"), Decimal("100.01"))


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1e9"), places=6),
    spread=st.decimals(min_value=Decimal(0), max_value=Decimal(500), places=2),
    symbol=st.sampled_from(INSTRUMENTS.symbols),
)
def test_quotes_are_ordered_and_on_tick(price: Decimal, spread: Decimal, symbol: str) -> None:
    quote = builder(spread_bps=spread).build(RawTick(symbol, time_ns=1, price=price))
    instrument = INSTRUMENTS[symbol]
    if quote is None:
        # Only a price rounding down to zero can be refused.
        assert price - price * spread / 20000 < instrument.tick_size
        return
    assert quote.bid < quote.ask
    assert instrument.is_on_tick(quote.bid) and instrument.is_on_tick(quote.ask)
    assert quote.ask - quote.bid >= price * spread / 10000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (RawTick("XRPUSD", price="1"), "unknown_symbol"),
        (RawTick("BTCUSD", price="abc"), "not_a_number"),
        (RawTick("BTCUSD", price=""), "not_a_number"),
        (RawTick("BTCUSD", price="NaN"), "not_a_number"),
        (RawTick("BTCUSD", price="Infinity"), "not_a_number"),
        (RawTick("BTCUSD", price=1.5), "not_a_number"),
        (RawTick("BTCUSD", price=True), "not_a_number"),
        (RawTick("BTCUSD", price=None, bid="1", ask=None), "not_a_number"),
        (RawTick("BTCUSD", price={"p": 1}), "not_a_number"),
        (RawTick("BTCUSD", price="0"), "non_positive"),
        (RawTick("BTCUSD", price="-5"), "non_positive"),
        (RawTick("BTCUSD", price="0.001"), "non_positive"),
        (RawTick("BTCUSD", price="1e30"), "too_large"),
        (RawTick("BTCUSD", bid="101", ask="100"), "crossed"),
        (RawTick("BTCUSD", price="100", volume="-1"), "bad_volume"),
        (RawTick("BTCUSD", price="100", volume="x"), "bad_volume"),
        (RawTick("BTCUSD", bid="100.00", ask="100.00", exact=True), "crossed"),
        (RawTick("BTCUSD", bid="100.001", ask="100.01", exact=True), "off_tick"),
        (RawTick("BTCUSD", bid="0", ask="100.01", exact=True), "non_positive"),
        (RawTick("BTCUSD", bid="x", ask="100.01", exact=True), "not_a_number"),
    ],
)
def test_garbage_is_dropped_and_counted(raw: RawTick, reason: str) -> None:
    quotes = builder()
    assert quotes.build(raw) is None
    assert quotes.drops == {reason: 1}
    assert quotes.accepted == 0


def test_absurd_jumps_are_dropped_until_the_new_level_is_confirmed() -> None:
    quotes = builder(max_jump_bps=Decimal(500), jump_confirm=3)
    assert quotes.build(RawTick("BTCUSD", price="100000")) is not None
    assert quotes.build(RawTick("BTCUSD", price="104000")) is not None
    # 50 % down in one tick: a bad print, dropped.
    assert quotes.build(RawTick("BTCUSD", price="52000")) is None
    assert quotes.build(RawTick("BTCUSD", price="104100")) is not None
    assert quotes.drops["jump"] == 1
    # A real crash repeats: the third consistent tick is accepted and becomes the reference.
    assert quotes.build(RawTick("BTCUSD", price="60000")) is None
    assert quotes.build(RawTick("BTCUSD", price="60100")) is None
    confirmed = quotes.build(RawTick("BTCUSD", price="60050"))
    assert confirmed is not None and confirmed.bid < Decimal(60050)
    assert quotes.build(RawTick("BTCUSD", price="60000")) is not None
    assert quotes.drops["jump"] == 3


def test_exact_quotes_skip_spread_and_jump_filter() -> None:
    quotes = builder()
    assert quotes.build(RawTick("BTCUSD", price="100000")) is not None
    quote = quotes.build(RawTick("BTCUSD", bid="50000.00", ask="50000.50", exact=True))
    assert quote is not None
    assert (quote.bid, quote.ask) == (Decimal("50000.00"), Decimal("50000.50"))


def test_sequences_increase_and_time_never_runs_backwards() -> None:
    quotes = builder()
    first = quotes.build(RawTick("ETHUSD", time_ns=2_000, price="3000"))
    second = quotes.build(RawTick("ETHUSD", time_ns=1_000, price="3001"))
    third = quotes.build(RawTick("ETHUSD", time_ns=3_000, price="3002"))
    assert first is not None and second is not None and third is not None
    assert [q.sequence for q in (first, second, third)] == [1, 2, 3]
    assert [q.time_ns for q in (first, second, third)] == [2_000, 2_000, 3_000]


def test_volume_is_carried() -> None:
    quote = builder().build(RawTick("ETHUSD", price="3000", volume="1.25"))
    assert quote is not None and quote.volume == Decimal("1.25")


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="spread"):
        QuoteBuilder(INSTRUMENTS, QuoteSettings(spread_bps=Decimal(-1)))


def test_parse_decimal() -> None:
    assert parse_decimal("  12.50 ") == Decimal("12.50")
    assert parse_decimal(7) == Decimal(7)
    assert parse_decimal("1" * 65) is None
    assert parse_decimal("sNaN") is None


raw_values = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@given(
    symbol=st.sampled_from(["BTCUSD", "ETHUSD", "SOLUSD", "", "btcusd"]),
    price=raw_values,
    bid=raw_values,
    ask=raw_values,
    volume=raw_values,
    exact=st.booleans(),
)
def test_any_input_is_either_a_valid_quote_or_a_counted_drop(
    symbol: str, price: object, bid: object, ask: object, volume: object, exact: bool
) -> None:
    quotes = builder()
    quote = quotes.build(RawTick(symbol, price=price, bid=bid, ask=ask, volume=volume, exact=exact))
    if quote is None:
        assert sum(quotes.drops.values()) == 1
        return
    instrument = INSTRUMENTS[symbol]
    assert 0 < quote.bid < quote.ask
    assert instrument.is_on_tick(quote.bid) and instrument.is_on_tick(quote.ask)
    assert quote.volume is None or quote.volume >= 0
