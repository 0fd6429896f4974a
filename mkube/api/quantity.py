"""Kubernetes resource quantities ("100m", "128Mi", "1.5Gi", "1e3") as exact numbers.

Grammar (k8s.io/apimachinery/pkg/api/resource):

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei          (binary, powers of 1024)
                 | n | u | m | "" | k | M | G | T | P | E (decimal SI)
                 | e<signedNumber> | E<signedNumber>     (decimal exponent)

Parsing is exact (Decimal); conversions to integers round *up*, as Kubernetes'
`Value()`/`MilliValue()` do, so "0.5m" cpu is 1 millicore, never 0.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

QUANTITY_REGEX = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
"""The regex Kubernetes quotes in its error message (kept verbatim for familiarity)."""

_NUMBER = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)")
_EXPONENT = re.compile(r"^[eE]([+-]?\d+)$")

_BINARY = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_EXPONENT = 100  # beyond any real resource; keeps Decimal arithmetic cheap and bounded

# Enough digits for exact arithmetic on anything that passed the exponent bound.
_CTX = decimal.Context(prec=250, rounding=decimal.ROUND_CEILING, Emax=1000, Emin=-1000)

Quantity = str | int | float | Decimal


def _error(value: object, why: str = "") -> ValueError:
    detail = f" ({why})" if why else ""
    return ValueError(f"invalid quantity {value!r}{detail}: quantities must match the regular expression "
                      f"'{QUANTITY_REGEX}'")


def parse_quantity(q: Quantity) -> Decimal:
    """The exact value of a quantity. Raises ValueError for anything Kubernetes would reject."""
    if isinstance(q, bool):
        raise _error(q, "not a number")
    if isinstance(q, int):
        return Decimal(q)
    if isinstance(q, float):
        if q != q or q in (float("inf"), float("-inf")):
            raise _error(q, "not a finite number")
        return Decimal(repr(q))
    if isinstance(q, Decimal):
        if not q.is_finite():
            raise _error(q, "not a finite number")
        return q
    if not isinstance(q, str):
        raise _error(q, "must be a string or a number")
    s = q.strip()
    if not s or s != q:
        raise _error(q, "empty" if not s else "surrounding whitespace")
    m = _NUMBER.match(s)
    if not m:
        raise _error(q)
    sign, digits = m.group(1), m.group(2)
    if len(digits) > 200:
        raise _error(q, "too many digits")
    suffix = s[m.end():]
    number = Decimal(sign + digits)
    if suffix in _BINARY:
        return _CTX.multiply(number, Decimal(_BINARY[suffix]))
    if suffix in _DECIMAL:
        exponent = _DECIMAL[suffix]
    else:
        em = _EXPONENT.match(suffix)
        if not em:
            raise _error(q, f"unknown suffix {suffix!r}")
        exponent = int(em.group(1))
        if abs(exponent) > _MAX_EXPONENT:
            raise _error(q, "exponent out of range")
    return number.scaleb(exponent, _CTX)


def is_quantity(q: object) -> bool:
    """Whether `q` parses as a quantity."""
    try:
        parse_quantity(q)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def _ceil(d: Decimal) -> int:
    return int(d.to_integral_value(rounding=decimal.ROUND_CEILING))


def cpu_millis(q: Quantity) -> int:
    """Millicores of a cpu quantity ("100m" -> 100, "0.5" -> 500, "2" -> 2000), rounded up."""
    return _ceil(_CTX.multiply(parse_quantity(q), Decimal(1000)))


def bytes_(q: Quantity) -> int:
    """The integer value of a quantity, e.g. bytes of memory ("128Mi" -> 134217728), rounded up."""
    return _ceil(parse_quantity(q))


def value(q: Quantity) -> int:
    """Alias of `bytes_` for non-memory integer resources (pods, ephemeral-storage ...)."""
    return bytes_(q)


def format_cpu(millis: int) -> str:
    """Canonical cpu form: whole cores as "2", otherwise millicores as "250m"."""
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


_BINARY_DESC = sorted(_BINARY.items(), key=lambda kv: -kv[1])


def format_memory(n: int) -> str:
    """Canonical memory form: the largest exact binary suffix ("128Mi", "1536Mi"), else plain bytes."""
    if n != 0 and (n >= 1024 or n <= -1024):
        for suffix, factor in _BINARY_DESC:
            if n % factor == 0:
                return f"{n // factor}{suffix}"
    return str(n)


def format_quantity(d: Decimal) -> str:
    """A compact decimal string for an exact value (used in messages): "1.5", "2", "0.001"."""
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")
