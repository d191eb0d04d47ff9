"""Phone numbers → E.164, so a number written any common way finds the same lead.

CRMs hold numbers as people typed them (``03-1234-5678``, ``(03)1234-5678``, full-width digits,
``+81 (0)3 …``, ``… 内線12``); MiiTel sends them as the line dialled them (``0312345678``,
``+81312345678``). Both sides go through :func:`to_e164` and are compared as E.164 strings.
Parsing and validation are the ``phonenumbers`` library's (Google's libphonenumber metadata),
never a home-made pattern.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

DEFAULT_REGION = "JP"
"""Region assumed for numbers written without a country code (a national ``0…`` number)."""

_ANNOTATION = re.compile(r"[(\[（【][^0-9()（）\[\]【】]*[)\]）】]")
"""A bracketed note with no digits in it: ``(代表)``, ``（携帯）``, ``[main]``."""
_EXTENSION = re.compile(r"(内線|ext\.?|extension|x)\s*[:：]?\s*(?=\d)", re.IGNORECASE)
_LEADING_00 = re.compile(r"^\s*00(?=[1-9])")


def _clean(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw)
    text = _ANNOTATION.sub(" ", text)
    text = _EXTENSION.sub(" ext. ", text)
    # No Japanese national number starts with 00 (those are carrier codes): 0081… means +81….
    return _LEADING_00.sub("+", text).strip()


def to_e164(raw: object, region: str = DEFAULT_REGION) -> str | None:
    """``raw`` as an E.164 string (``+81312345678``), the extension dropped; ``None`` when it is
    empty or not a valid number for its region."""
    if raw is None:
        return None
    text = _clean(str(raw))
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
