"""Checks Spark SQL expressions without a JVM, so ``plan``/``apply`` stay fast and Spark-free."""

from __future__ import annotations


def check_spark_expression(expression: str) -> str:
    """Raise ValueError with the parser's reason when ``expression`` is not valid Spark SQL."""
    import sqlglot
    from sqlglot.errors import ParseError

    if not expression.strip():
        raise ValueError("expression is empty")
    try:
        parsed = sqlglot.parse(f"SELECT {expression}", read="spark")
    except (ParseError, sqlglot.errors.TokenError) as error:
        reason = str(error).splitlines()[0]
        raise ValueError(f"expression {expression!r} does not parse as Spark SQL: {reason}") from None
    select = parsed[0] if len(parsed) == 1 else None
    if select is None or len(select.expressions) != 1 or select.args.get("from"):
        raise ValueError(f"expression {expression!r} must be exactly one Spark SQL expression")
    return expression
