"""A plain-Python oracle of the cast rule: does a source value convert exactly to a dtype, and to
what? Written independently of ``granero.offline.casts`` (no Spark), value by value.

``convert`` returns ``(verdict, value)``: verdict True (converts exactly, to ``value``), False (it
would change or does not parse: must be refused) or None (Spark's own syntax decides: not used).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np

TRUE_TEXT = {"t", "true", "y", "yes", "1"}
FALSE_TEXT = {"f", "false", "n", "no", "0"}
_INTEGER_TEXT = re.compile(r" *([+-]?[0-9]+) *")
_FRACTION_TEXT = re.compile(r" *[+-]?[0-9]+\.[0-9]+ *")
_FLOAT_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?")
_SPECIAL_FLOATS = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan"}
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def convert(value, source: str, dtype: str):
    if value is None:
        return True, None
    if dtype.startswith("list<"):
        return _convert_list(value, source[len("array<") : -1], dtype[len("list<") : -1])
    return _SCALAR[dtype](value, source)


def _convert_list(values, source: str, dtype: str):
    converted = [convert(v, source, dtype) for v in values]
    if any(verdict is None for verdict, _ in converted):
        return None, None
    if not all(verdict for verdict, _ in converted):
        return False, None
    return True, [v for _, v in converted]


def _to_integer(bits: int):
    def convert_one(value, source: str):
        if isinstance(value, str):
            match = _INTEGER_TEXT.fullmatch(value)
            if not match:
                return _unparsed(value, _FRACTION_TEXT)
            number = int(match[1])
        elif isinstance(value, float):
            if not math.isfinite(value) or value != int(value):
                return False, None
            number = int(value)
        elif isinstance(value, Decimal):
            if value != value.to_integral_value():
                return False, None
            number = int(value)
        else:
            number = value
        return (-(2 ** (bits - 1)) <= number < 2 ** (bits - 1)), number

    return convert_one


def _to_float(single: bool):
    def narrow(x: float) -> float:
        with np.errstate(over="ignore"):
            return float(np.float32(x)) if single else x

    def convert_one(value, source: str):
        if isinstance(value, str):
            text = value.strip(" ").lower()
            if text not in _SPECIAL_FLOATS and not _FLOAT_TEXT.fullmatch(text):
                return _unparsed(value, None)
            result = narrow(float(text))
            return not (math.isinf(result) and "inf" not in value.lower()), result
        if isinstance(value, int):
            result = narrow(float(value))
            return math.isfinite(result) and int(result) == value, result
        result = narrow(float(value))
        return not (math.isinf(result) and not math.isinf(float(value))), result

    return convert_one


def _unparsed(text: str, refused: re.Pattern | None):
    """Text outside the simple grammar: refused when it has no digit (or matches ``refused``),
    else left to Spark's own syntax (unjudged)."""
    if not any(c.isdigit() for c in text) or (refused and refused.fullmatch(text)):
        return False, None
    return None, None


def _to_bool(value, source: str):
    if isinstance(value, bool):
        return True, value
    text = value.strip().lower()
    if text in TRUE_TEXT | FALSE_TEXT:
        return True, text in TRUE_TEXT
    return False, None


def _to_string(value, source: str):
    """Kept as the original: the test reads Spark's text back and compares it with this."""
    return True, value


def _to_bytes(value, source: str):
    return True, value.encode() if isinstance(value, str) else bytes(value)


def _to_timestamp(value, source: str):
    """As microseconds since the epoch; naive values are UTC."""
    if isinstance(value, str):
        if _ISO_TIME.fullmatch(value.strip()):
            return True, _micros(datetime.fromisoformat(value.strip()))
        return (False, None) if value.strip().isalpha() else (None, None)
    if isinstance(value, datetime):
        return True, _micros(value)
    return True, _micros(datetime(value.year, value.month, value.day))


def _micros(moment: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return round((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


def text_means(text: str, original, source: str) -> bool:
    """Whether Spark's text of a value reads back as exactly that value."""
    if original is None:
        return text is None
    if isinstance(original, bool):
        return text == str(original).lower()
    if isinstance(original, float):
        back = float(text)
        return math.isnan(back) if math.isnan(original) else back == original
    if isinstance(original, date):
        return date.fromisoformat(text) == original
    return type(original)(text) == original


_SCALAR = {
    "int32": _to_integer(32),
    "int64": _to_integer(64),
    "float32": _to_float(single=True),
    "float64": _to_float(single=False),
    "bool": _to_bool,
    "string": _to_string,
    "bytes": _to_bytes,
    "timestamp": _to_timestamp,
}
