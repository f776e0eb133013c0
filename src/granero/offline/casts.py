"""The one cast rule: how a source column's type becomes a declared dtype, and when it may not.

Every column of a view's table (join keys, timestamps, features) comes from a source column or a
transformation whose Spark type may differ from the declared dtype. Materialization never casts
lossily in silence; ``rule(source_type, dtype)`` says what it does instead:

    EXACT    every value converts exactly (same type or a widening): a plain cast
    ROUNDS   a float dtype holds the nearest value of its precision (decimal -> float*)
    CHECKED  some values convert exactly, some would change: each value is checked in the job,
             and the first that would change fails it, naming the view, column, types and value
    REFUSED  no conversion (booleans <-> numbers, numbers -> timestamps...): refused before any job

The table, source (Spark) type by declared dtype; ``int``: tinyint/smallint/int/bigint::

    declared   EXACT from                          CHECKED from (what each value must be)
    int32      tinyint..int, decimal(<=9,0)        bigint (in range), float/double/decimal (whole,
                                                   in range), string (an integer literal)
    int64      tinyint..bigint, decimal(<=18,0)    float/double/decimal (whole, in range), string
    float32    tinyint, smallint, float; decimal   int/bigint (exactly representable), double (not
               (ROUNDS)                            overflowing: rounds to float32), string (parses)
    float64    tinyint..int, float, double;        bigint (exactly representable), string (parses)
               decimal (ROUNDS)
    bool       boolean                             string (true/false, t/f, yes/no, y/n, 1/0)
    string     string, numbers, boolean, date      -
    bytes      binary, string (UTF-8)              -
    timestamp  timestamp, timestamp_ntz and date   string (parses as a time)
               (naive: the session time zone, UTC)
    list<T>    array<S> where S -> T is allowed, checked element by element
    any        void (a column of nulls)

Everything else is REFUSED. A lossy conversion is still possible, on purpose: write it as a
transformation (``CAST(x AS BIGINT)``, ``round(x)``, ``timestamp_millis(x)``), whose result type
then meets the table above. Pure: no Spark here; ``spark_casts`` builds the Spark columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from granero.types import list_element


class Rule(Enum):
    EXACT = "exact"
    ROUNDS = "rounds"
    CHECKED = "checked"
    REFUSED = "refused"


class Check(Enum):
    """What a CHECKED value must be (``spark_casts`` states each as a Spark predicate)."""

    IN_RANGE = "in_range"  # integer narrowing
    WHOLE = "whole"  # float/double -> integer
    WHOLE_DECIMAL = "whole_decimal"  # decimal -> integer
    REPRESENTABLE = "representable"  # integer -> float
    NO_OVERFLOW = "no_overflow"  # double -> float32
    PARSES = "parses"  # string -> anything checked

    @property
    def failure(self) -> str:
        """How a value that fails this check is described, before the dtype."""
        return _FAILURES[self]


_FAILURES = {
    Check.IN_RANGE: "is outside the range of",
    Check.WHOLE: "is not a whole number in the range of",
    Check.WHOLE_DECIMAL: "is not a whole number in the range of",
    Check.REPRESENTABLE: "has no exact value in",
    Check.NO_OVERFLOW: "overflows",
    Check.PARSES: "does not parse as",
}


@dataclass(frozen=True)
class Conversion:
    """The rule for one (source type, dtype) pair; ``check`` for CHECKED, ``reason`` if REFUSED."""

    rule: Rule
    check: Check | None = None
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.rule is not Rule.REFUSED


INTEGER_BITS = {"tinyint": 8, "smallint": 16, "int": 32, "bigint": 64}
FLOAT_MANTISSA_BITS = {"float": 24, "double": 53}
_DECLARED_INT_BITS = {"int32": 32, "int64": 64}
_DECLARED_INT_DIGITS = {"int32": 9, "int64": 18}  # decimal(p, 0) with p digits always fits
_DECLARED_FLOAT_BITS = {"float32": 24, "float64": 53}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_TEXT_FROM = {*INTEGER_BITS, *FLOAT_MANTISSA_BITS, "boolean", "date", "string"}
_TIME_FROM = {"timestamp", "timestamp_ntz", "date"}

EXACT = Conversion(Rule.EXACT)


def rule(source_type: str, dtype: str) -> Conversion:
    """How a column of Spark type ``source_type`` (``simpleString``) becomes ``dtype``."""
    source_type = source_type.strip().lower()
    element = list_element(dtype)
    if source_type == "void":
        return EXACT
    if element is not None or source_type.startswith("array<"):
        return _list_rule(source_type, dtype, element)
    return _scalar_rule(source_type, dtype)


def array_element(source_type: str) -> str | None:
    """The element type of a Spark ``array<...>`` type string, or None."""
    if source_type.startswith("array<") and source_type.endswith(">"):
        return source_type[len("array<") : -1]
    return None


def _list_rule(source_type: str, dtype: str, element: str | None) -> Conversion:
    source_element = array_element(source_type)
    if element is None or source_element is None:
        return _refused("a list and a single value do not convert")
    inner = rule(source_element, element)
    return inner if inner.allowed else _refused(inner.reason)


def _scalar_rule(source: str, dtype: str) -> Conversion:
    if dtype in _DECLARED_INT_BITS:
        return _to_integer(source, dtype)
    if dtype in _DECLARED_FLOAT_BITS:
        return _to_float(source, dtype)
    if source == "string" and dtype in ("bool", "timestamp"):
        return Conversion(Rule.CHECKED, Check.PARSES)
    allowed = {
        "bool": {"boolean"},
        "string": _TEXT_FROM | {"decimal"},
        "bytes": {"binary", "string"},
        "timestamp": _TIME_FROM,
    }[dtype]
    if _family(source) in allowed:
        return EXACT
    return _refused(_refusal_reason(source, dtype))


def _to_integer(source: str, dtype: str) -> Conversion:
    if source in INTEGER_BITS:
        fits = INTEGER_BITS[source] <= _DECLARED_INT_BITS[dtype]
        return EXACT if fits else Conversion(Rule.CHECKED, Check.IN_RANGE)
    if source in FLOAT_MANTISSA_BITS:
        return Conversion(Rule.CHECKED, Check.WHOLE)
    if decimal := _DECIMAL.match(source):
        precision, scale = int(decimal[1]), int(decimal[2])
        fits = scale == 0 and precision <= _DECLARED_INT_DIGITS[dtype]
        return EXACT if fits else Conversion(Rule.CHECKED, Check.WHOLE_DECIMAL)
    if source == "string":
        return Conversion(Rule.CHECKED, Check.PARSES)
    return _refused(_refusal_reason(source, dtype))


def _to_float(source: str, dtype: str) -> Conversion:
    mantissa = _DECLARED_FLOAT_BITS[dtype]
    if source in INTEGER_BITS:
        exact = INTEGER_BITS[source] - 1 <= mantissa
        return EXACT if exact else Conversion(Rule.CHECKED, Check.REPRESENTABLE)
    if source in FLOAT_MANTISSA_BITS:
        if FLOAT_MANTISSA_BITS[source] <= mantissa:
            return EXACT
        return Conversion(Rule.CHECKED, Check.NO_OVERFLOW)
    if _DECIMAL.match(source):
        return Conversion(Rule.ROUNDS)
    if source == "string":
        return Conversion(Rule.CHECKED, Check.PARSES)
    return _refused(_refusal_reason(source, dtype))


def _family(source: str) -> str:
    return "decimal" if _DECIMAL.match(source) else source


def _refusal_reason(source: str, dtype: str) -> str:
    numeric = source in INTEGER_BITS or source in FLOAT_MANTISSA_BITS or bool(_DECIMAL.match(source))
    if dtype == "timestamp" and numeric:
        return (
            "a number carries no time unit: convert it, e.g. timestamp_millis(x); Parquet "
            "nanosecond timestamps (pandas' default) read from a URI arrive as numbers: write "
            "them with to_parquet(..., coerce_timestamps='us')"
        )
    numeric_dtype = dtype in _DECLARED_INT_BITS or dtype in _DECLARED_FLOAT_BITS
    if {source, dtype} & {"boolean", "bool"} and (numeric or numeric_dtype):
        return "booleans and numbers do not convert (write the comparison, e.g. x = 1)"
    if dtype == "string" and source in ("timestamp", "timestamp_ntz"):
        return "a timestamp's text depends on the time zone (format it, e.g. date_format(x, ...))"
    return "no conversion between these types"


def _refused(reason: str) -> Conversion:
    return Conversion(Rule.REFUSED, reason=reason)
