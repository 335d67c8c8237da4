from decimal import Decimal

from market_svc.candles import Candle, CandleInterval
from market_svc.tickers import TickerBook

MINUTE = 60_000
DAY = 1440 * MINUTE


def minute(index: int, o: str, h: str, lo: str, c: str, volume: str = "1") -> Candle:
    return Candle(
        "ETHUSD",
        CandleInterval.M1,
        index * MINUTE,
        Decimal(o),
        Decimal(h),
        Decimal(lo),
        Decimal(c),
        Decimal(volume),
        1,
    )


def test_ticker_covers_the_last_24_hours_of_minutes() -> None:
    book = TickerBook()
    book.add(minute(0, "50", "500", "1", "60"), closed=True)  # falls out of the window
    book.add(minute(100, "100", "120", "90", "110", "2"), closed=True)
    book.add(minute(1000, "110", "130", "80", "115", "3"), closed=True)
    book.add(minute(1440, "115", "116", "114", "116", "4"), closed=False)
    ticker = book.ticker("ETHUSD", 1440 * MINUTE + 30_000)
    assert ticker is not None
    assert (ticker.open, ticker.high, ticker.low, ticker.last, ticker.volume) == (
        Decimal(100),
        Decimal(130),
        Decimal(80),
        Decimal(116),
        Decimal(9),
    )
    assert ticker.change == Decimal(16)
    assert ticker.change_percent == Decimal("16.00")
    assert ticker.open_time_ms == MINUTE


def test_closing_the_current_minute_moves_it_to_history() -> None:
    book = TickerBook()
    book.add(minute(5, "1", "2", "1", "2"), closed=False)
    book.add(minute(5, "1", "3", "1", "3"), closed=True)
    book.add(minute(5, "1", "9", "1", "9"), closed=True)  # a repeat is ignored
    book.add(minute(6, "3", "4", "3", "4"), closed=False)
    ticker = book.ticker("ETHUSD", 6 * MINUTE)
    assert ticker is not None
    assert (ticker.high, ticker.last, ticker.volume) == (Decimal(4), Decimal(4), Decimal(2))


def test_no_ticker_without_recent_data_or_for_other_intervals() -> None:
    book = TickerBook()
    book.add(Candle("ETHUSD", CandleInterval.H1, 0, *(Decimal(1),) * 4, Decimal(1), 1), closed=True)
    assert book.ticker("ETHUSD", 0) is None
    book.add(minute(0, "1", "1", "1", "1"), closed=True)
    assert book.ticker("ETHUSD", 2 * DAY) is None
    assert book.ticker("BTCUSD", 0) is None
