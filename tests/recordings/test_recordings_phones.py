"""Phone numbers as people and phone systems write them in Japan → one E.164 form."""

from __future__ import annotations

import pytest

from tasuki.recordings.phones import to_e164

TOKYO = "+81312345678"
MOBILE = "+819012345678"

REAL_WORLD = [
    # Tokyo landline, as typed into CRMs and sent by phone systems
    ("03-1234-5678", TOKYO),
    ("0312345678", TOKYO),
    ("03 1234 5678", TOKYO),
    ("03.1234.5678", TOKYO),
    ("(03)1234-5678", TOKYO),
    ("（03）1234-5678", TOKYO),
    ("03(1234)5678", TOKYO),
    ("０３－１２３４－５６７８", TOKYO),
    ("+81 3 1234 5678", TOKYO),
    ("+81-3-1234-5678", TOKYO),
    ("+81312345678", TOKYO),
    ("81312345678", TOKYO),
    ("+81 (0)3 1234 5678", TOKYO),
    ("+8103-1234-5678", TOKYO),
    ("010-81-3-1234-5678", TOKYO),
    ("0081-3-1234-5678", TOKYO),
    ("tel:+81-3-1234-5678", TOKYO),
    ("TEL: 03-1234-5678", TOKYO),
    ("03-1234-5678 (代表)", TOKYO),
    ("03-1234-5678 内線123", TOKYO),
    ("03-1234-5678 ext. 12", TOKYO),
    # mobiles
    ("090-1234-5678", MOBILE),
    ("09012345678", MOBILE),
    ("+81 90-1234-5678", MOBILE),
    ("+81-(0)90-1234-5678", MOBILE),
    ("０９０１２３４５６７８", MOBILE),
    ("080-1234-5678", "+818012345678"),
    ("070-1234-5678", "+817012345678"),
    # toll-free, navi dial, IP phones
    ("0120-123-456", "+81120123456"),
    ("0120123456", "+81120123456"),
    ("0800-123-4567", "+818001234567"),
    ("0570-064-123", "+81570064123"),
    ("050-1234-5678", "+815012345678"),
    # other area codes (2-, 3-, 4-digit)
    ("06-6123-4567", "+81661234567"),
    ("011-231-4567", "+81112314567"),
    ("045-123-4567", "+81451234567"),
    ("0466-12-3456", "+81466123456"),
    # foreign numbers keep their country
    ("+1 415 555 2671", "+14155552671"),
    ("+44 20 7946 0958", "+442079460958"),
]


@pytest.mark.parametrize(("written", "e164"), REAL_WORLD)
def test_a_number_written_any_common_way_is_one_e164(written: str, e164: str) -> None:
    assert to_e164(written) == e164


@pytest.mark.parametrize("junk", [None, "", "   ", "1234", "不明", "03-1234", "abc@example.jp"])
def test_what_is_not_a_phone_number_is_none(junk: str | None) -> None:
    assert to_e164(junk) is None


def test_the_table_covers_the_common_japanese_kinds() -> None:
    kinds = ("+813", "+8190", "+8180", "+8170", "+81120", "+81800", "+81570", "+8150", "+816")
    for prefix in kinds:
        assert any(e164.startswith(prefix) for _, e164 in REAL_WORLD), prefix
