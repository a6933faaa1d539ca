"""The currencies money may be in: ISO 4217's codes in circulation.

Not every three capitals: a shop is never paid in funds (`BOV`, `USN`, ...), metals (`XAU`), `XDR`, the
testing code `XTS` or "no currency" `XXX`, and an order priced in one could never be refunded sensibly.
"""

from __future__ import annotations

ISO_4217 = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD
XCG XOF XPF YER ZAR ZMW ZWG
"""

CURRENCIES = frozenset(ISO_4217.split())


def known_currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"{code} is not a currency in circulation (ISO 4217)")
    return code
