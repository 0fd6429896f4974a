"""Kubernetes quantities: exact parsing, rounding up, canonical formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mkube.api.quantity import bytes_, cpu_millis, format_cpu, format_memory, is_quantity, parse_quantity


@pytest.mark.parametrize(("text", "expected"), [
    ("100m", Decimal("0.1")),
    ("0.5", Decimal("0.5")),
    ("2", Decimal(2)),
    ("128Mi", Decimal(128 * 1024**2)),
    ("1.5Gi", Decimal(1536 * 1024**2)),
    ("1e3", Decimal(1000)),
    ("1E3", Decimal(1000)),
    ("2e-3", Decimal("0.002")),
    ("500k", Decimal(500_000)),
    ("1G", Decimal(10**9)),
    ("1M", Decimal(10**6)),
    ("1Ki", Decimal(1024)),
    ("1Ei", Decimal(2**60)),
    ("1E", Decimal(10**18)),
    ("10n", Decimal("0.00000001")),
    ("10u", Decimal("0.00001")),
    (".5", Decimal("0.5")),
    ("5.", Decimal(5)),
    ("+1", Decimal(1)),
    ("-1", Decimal(-1)),
    (3, Decimal(3)),
    (0.25, Decimal("0.25")),
])
def test_parse(text: str | int | float, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "Mi", "1Mb", "1 Gi", " 1", "1e", "1e1000", "1ki", "--1",
                                  "1..", "0x10", None, [1], True, float("nan")])
def test_invalid_quantities_raise_value_error_with_a_clear_message(text: object) -> None:
    with pytest.raises(ValueError, match="quantities must match the regular expression"):
        parse_quantity(text)  # type: ignore[arg-type]
    assert not is_quantity(text)


def test_cpu_millis_rounds_up_like_kubernetes() -> None:
    assert cpu_millis("100m") == 100
    assert cpu_millis("0.5") == 500
    assert cpu_millis("2") == 2000
    assert cpu_millis("0.0001") == 1  # MilliValue rounds up
    assert cpu_millis(1) == 1000
    assert cpu_millis("1500u") == 2


def test_bytes() -> None:
    assert bytes_("128Mi") == 134_217_728
    assert bytes_("1G") == 1_000_000_000
    assert bytes_("1.5Gi") == 1_610_612_736
    assert bytes_("0.5") == 1  # Value rounds up
    assert bytes_(4096) == 4096


def test_format_cpu() -> None:
    assert format_cpu(2000) == "2"
    assert format_cpu(250) == "250m"
    assert format_cpu(0) == "0"
    assert format_cpu(1500) == "1500m"


def test_format_memory() -> None:
    assert format_memory(128 * 1024**2) == "128Mi"
    assert format_memory(1536 * 1024**2) == "1536Mi"
    assert format_memory(2 * 1024**3) == "2Gi"
    assert format_memory(1000) == "1000"
    assert format_memory(1024) == "1Ki"
    assert format_memory(0) == "0"
    assert format_memory(1_000_000_000) == "1000000000"


def test_roundtrip_of_formatting() -> None:
    for millis in (1, 100, 999, 1000, 12_345):
        assert cpu_millis(format_cpu(millis)) == millis
    for n in (1, 1023, 1024, 3 * 1024**2, 5 * 1024**4 + 1024):
        assert bytes_(format_memory(n)) == n
