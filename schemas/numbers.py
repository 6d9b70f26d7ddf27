"""How every amount, rate and hour figure is written out (API, CLI, status page).

One rule, so a client never meets ``"1.2E+2"`` beside ``"120.000000"``: fixed-point
text, never an exponent; money in its currency's minor units (babel's currency data:
JPY 0 digits, KWD 3, most 2), rounded half-up as invoices round; a rate in its
currency's minor units too unless it has more significant decimals, which are kept
up to :data:`RATE_MAX_DECIMALS` (an hourly rate of 80.125 is a real price); hours
with 2 decimals. A figure without a currency (a staff user's rate applies to every
project) takes 2 minor units.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision

__all__ = [
    "HOURS_DECIMALS",
    "RATE_MAX_DECIMALS",
    "hours_text",
    "minor_units",
    "money_text",
    "rate_text",
]

HOURS_DECIMALS = 2
RATE_MAX_DECIMALS = 6  # the rate columns' scale: Numeric(18, 6)
_NO_CURRENCY_DECIMALS = 2


def minor_units(currency: str | None) -> int:
    """Digits after the point of ``currency`` (2 when there is none)."""
    if not currency:
        return _NO_CURRENCY_DECIMALS
    return int(get_currency_precision(currency))


def money_text(amount: Decimal, currency: str | None) -> str:
    """``amount`` in the currency's minor units: ``"120.00"``, ``"95"`` (JPY)."""
    return _fixed(amount, minor_units(currency))


def rate_text(rate: Decimal, currency: str | None) -> str:
    """At least the currency's minor units, more only where the rate has them:
    ``"120.00"``, ``"80.125"``, ``"0.123457"`` (at most 6 decimals)."""
    significant = max(0, -int(rate.normalize().as_tuple().exponent))
    decimals = min(RATE_MAX_DECIMALS, max(minor_units(currency), significant))
    return _fixed(rate, decimals)


def hours_text(hours: Decimal) -> str:
    """Hours with 2 decimals: ``"2.25"``, ``"0.17"`` (10 minutes)."""
    return _fixed(hours, HOURS_DECIMALS)


def _fixed(value: Decimal, decimals: int) -> str:
    # Quantizing fixes the exponent, and format "f" never writes one (str() may: 1.2E+2).
    return format(value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP), "f")
