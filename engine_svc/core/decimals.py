"""Convert exact decimal strings to scaled integers and back: the core's only text boundary.

Accepted text is plain decimal notation: an optional leading ``-`` (only where negatives are
allowed), ASCII digits, and optionally a ``.`` followed by at least one digit. Exponents, signs
``+``, whitespace, ``NaN``/``inf``, underscores and empty strings are rejected. Trailing zeros
beyond the scale are accepted because they do not change the value; any other digit beyond the
scale is rejected as too many decimals. Every failure raises `DecimalFormatError`, a
`ValueError` naming the field and the problem.
"""

from __future__ import annotations

from .units import MAX_MONEY_MICROS, MONEY_DECIMALS

MAX_TEXT_LENGTH = 48


class DecimalFormatError(ValueError):
    """A decimal string is malformed, out of range or more precise than allowed.

    `below_step` is True when a positive value is smaller than the one step it must be a
    multiple of (the API's QUANTITY_TOO_SMALL case for quantities).
    """

    def __init__(self, field: str, problem: str, below_step: bool = False) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.below_step = below_step


def _is_digits(text: str) -> bool:
    if not text:
        return False
    return all(not (char < "0" or char > "9") for char in text)


def parse_scaled(
    text: object,
    decimals: int,
    *,
    field: str = "value",
    allow_negative: bool = False,
    allow_zero: bool = True,
    max_abs: int = 10**30,
) -> int:
    """Parse a decimal string into an integer scaled by 10**decimals, exactly.

    `max_abs` bounds the absolute scaled result (inclusive).
    """
    if not isinstance(text, str):
        raise DecimalFormatError(field, "must be a decimal string")
    if len(text) > MAX_TEXT_LENGTH:
        raise DecimalFormatError(field, f"longer than {MAX_TEXT_LENGTH} characters")
    body = text
    negative = False
    if body.startswith("-"):
        negative = True
        body = body[1:]
    if "." in body:
        whole, _, fraction = body.partition(".")
    else:
        whole, fraction = body, ""
    if not _is_digits(whole) or ("." in body and not _is_digits(fraction)):
        raise DecimalFormatError(field, f"not a plain decimal number: {text!r}")
    significant = fraction.rstrip("0")
    if len(significant) > decimals:
        raise DecimalFormatError(field, f"more than {decimals} decimal places: {text!r}")
    padded = significant + "0" * (decimals - len(significant))
    # Bound the digit count before converting so huge inputs cost nothing.
    if len(whole.lstrip("0")) > len(str(max_abs)):
        raise DecimalFormatError(field, f"too large: {text!r}")
    value = int(whole + padded) if decimals else int(whole)
    if negative:
        value = -value
    if value < 0 and not allow_negative:
        raise DecimalFormatError(field, f"must not be negative: {text!r}")
    if value == 0 and not allow_zero:
        raise DecimalFormatError(field, f"must be greater than zero: {text!r}")
    if abs(value) > max_abs:
        raise DecimalFormatError(field, f"too large: {text!r}")
    return value


def parse_steps(text: object, decimals: int, step_units: int, *, field: str, max_steps: int) -> int:
    """Parse a positive decimal that must be a whole multiple of a step; return the step count.

    The step is `step_units` * 10**-decimals (a tick size or a lot step).
    """
    try:
        scaled = parse_scaled(
            text, decimals, field=field, allow_zero=False, max_abs=max_steps * step_units
        )
    except DecimalFormatError as error:
        # Digits beyond the scale still mean a positive value below one step.
        if (
            isinstance(text, str)
            and "decimal places" in error.problem
            and _is_tiny(text, decimals, step_units)
        ):
            raise DecimalFormatError(error.field, error.problem, below_step=True) from None
        raise
    if scaled % step_units != 0:
        step = format_scaled(step_units, decimals)
        raise DecimalFormatError(
            field, f"not a multiple of {step}: {text!r}", below_step=scaled < step_units
        )
    return scaled // step_units


def _is_tiny(text: str, decimals: int, step_units: int) -> bool:
    whole, _, fraction = text.partition(".")
    if not _is_digits(whole) or not _is_digits(fraction) or int(whole) != 0:
        return False
    head = fraction[:decimals].ljust(decimals, "0")
    return int(head) < step_units and int(fraction) > 0


def parse_money(
    text: object, *, field: str = "amount", allow_zero: bool = False, allow_negative: bool = False
) -> int:
    """Parse a USD amount into micro-dollars (at most 6 decimals)."""
    return parse_scaled(
        text,
        MONEY_DECIMALS,
        field=field,
        allow_zero=allow_zero,
        allow_negative=allow_negative,
        max_abs=MAX_MONEY_MICROS,
    )


def parse_step_size(text: object, *, field: str) -> tuple[int, int]:
    """Parse a tick size or lot step; return (units, decimals) with size = units * 10**-decimals."""
    if not isinstance(text, str):
        raise DecimalFormatError(field, "must be a decimal string")
    fraction = text.partition(".")[2].rstrip("0") if "." in text else ""
    decimals = len(fraction)
    if decimals > 12:
        raise DecimalFormatError(field, f"more than 12 decimal places: {text!r}")
    units = parse_scaled(text, decimals, field=field, allow_zero=False, max_abs=10**15)
    return units, decimals


def parse_rate(text: object, *, field: str = "rate") -> tuple[int, int]:
    """Parse a rate in [0, 1) into an exact fraction (numerator, denominator)."""
    if not isinstance(text, str):
        raise DecimalFormatError(field, "must be a decimal string")
    fraction = text.partition(".")[2].rstrip("0") if "." in text else ""
    decimals = len(fraction)
    if decimals > 12:
        raise DecimalFormatError(field, f"more than 12 decimal places: {text!r}")
    denominator = 10**decimals
    numerator = parse_scaled(text, decimals, field=field, max_abs=denominator)
    if numerator >= denominator:
        raise DecimalFormatError(field, f"must be less than 1: {text!r}")
    return numerator, denominator


def format_scaled(value: int, decimals: int, *, min_decimals: int = 0) -> str:
    """Format an integer scaled by 10**decimals as an exact decimal string.

    Trailing fraction zeros are dropped down to `min_decimals` digits.
    """
    sign = "-" if value < 0 else ""
    digits = str(abs(value))
    if decimals == 0:
        return sign + digits + ("." + "0" * min_decimals if min_decimals else "")
    digits = digits.rjust(decimals + 1, "0")
    whole = digits[:-decimals]
    fraction = digits[-decimals:].rstrip("0")
    if len(fraction) < min_decimals:
        fraction = fraction + "0" * (min(min_decimals, decimals) - len(fraction))
    return sign + whole + ("." + fraction if fraction else "")


def format_money(micros: int) -> str:
    """Format micro-dollars as a USD decimal string with at least two decimals."""
    return format_scaled(micros, MONEY_DECIMALS, min_decimals=2)


def format_steps(steps: int, decimals: int, step_units: int) -> str:
    """Format a count of steps (ticks or lots) with exactly the step's number of decimals."""
    return format_scaled(steps * step_units, decimals, min_decimals=decimals)
