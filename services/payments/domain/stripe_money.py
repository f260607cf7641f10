"""Invoice amounts as Stripe takes them, and back.

Our invoices count in ISO 4217 minor units (INR paise, JPY yen, KWD fils). Stripe's API counts in *its* minor
units, which are the same for almost every currency but not all (https://docs.stripe.com/currencies):

- zero-decimal at Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF. All but MGA are
  zero-decimal in ISO too; MGA is two-decimal in ISO, so 1,000.00 MGA (100000 ISO minor units) is 1000 at Stripe,
  and an amount with iraimbilanja cannot be charged at all.
- three-decimal at Stripe: BHD JOD KWD OMR TND, and the last digit must be 0 (12.340 KWD, never 12.345).
  Other ISO three-decimal currencies (IQD, LYD) are two-decimal at Stripe.
- ISK is zero-decimal in ISO but two-decimal at Stripe "for backwards compatibility", in multiples of 100: 500 ISK
  is sent as 50000.
- everything else is two-decimal on both sides.

So an amount converts exactly or not at all: never rounded, since rounding moves money nobody asked for. An
invoice that cannot be converted is not collectable through Stripe (it stays payable offline, the reason on its
order). Stripe's own minimum charge (about 0.50 USD, varying by currency) is left to Stripe: it refuses the
PaymentIntent with ``amount_too_small`` and the order shows that refusal.
"""

from __future__ import annotations

import iso4217

from services.payments.domain.money import Collectable

ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
                          "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


class NotConvertible(ValueError):
    """An amount Stripe cannot represent exactly; the message says why."""


def stripe_exponent(currency: str) -> int:
    """Digits after the decimal point in Stripe's API amounts (JPY 0, INR 2, ISK 2, KWD 3)."""
    currency = currency.upper()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def iso_exponent(currency: str) -> int:
    try:
        exponent = iso4217.Currency(currency.upper()).exponent
    except ValueError:
        raise NotConvertible(f"{currency} is not an ISO 4217 currency") from None
    if exponent is None:
        raise NotConvertible(f"{currency} has no minor unit")
    return exponent


def to_stripe(amount_minor: int, currency: str) -> int:
    """ISO minor units -> Stripe's amount, exactly, obeying Stripe's rules for the currency."""
    ours, theirs = iso_exponent(currency), stripe_exponent(currency)
    if theirs >= ours:
        amount = amount_minor * 10 ** (theirs - ours)
    else:
        step = 10 ** (ours - theirs)
        if amount_minor % step:
            raise NotConvertible(f"Stripe takes {currency.upper()} in whole units of 10^-{theirs}: "
                                 f"{amount_minor} minor units has a fraction it cannot charge")
        amount = amount_minor // step
    if theirs == 3 and amount % 10:
        raise NotConvertible(f"Stripe takes {currency.upper()} amounts ending in 0 (three-decimal currency)")
    return amount


def from_stripe(amount: int, currency: str) -> int:
    """Stripe's amount -> ISO minor units. Raises NotConvertible for an amount no ISO amount maps to."""
    ours, theirs = iso_exponent(currency), stripe_exponent(currency)
    if ours >= theirs:
        return amount * 10 ** (ours - theirs)
    step = 10 ** (theirs - ours)
    if amount % step:
        raise NotConvertible(f"{amount} is not a whole number of {currency.upper()} minor units")
    return amount // step


def collectable(total_minor: int, currency: str) -> Collectable:
    """Whether an invoice total can be collected through Stripe, and why not."""
    if total_minor == 0:
        return Collectable(False, "nothing to pay: the invoice total is zero")
    try:
        to_stripe(total_minor, currency)
    except NotConvertible as error:
        return Collectable(False, str(error))
    return Collectable(True)
