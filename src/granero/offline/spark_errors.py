"""The one place Spark's and py4j's exceptions become Granero errors.

Spark reports failures as ``PySparkException`` subclasses (analysis errors, task failures such as
``raise_error``) or, for JVM errors PySpark does not convert, as ``Py4JJavaError``. Callers wrap
a unit of work in ``spark_errors(MaterializationError, "materializing view 'x'")`` and get one
precise line instead of a JVM stack trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from granero.errors import GraneroError

_MAX_DETAIL = 600


def describe(error: BaseException) -> str:
    """The first meaningful line of a Spark or JVM error."""
    java = getattr(error, "java_exception", None)
    text = str(java.getMessage()) if java is not None and java.getMessage() else str(error)
    line = next((part.strip() for part in text.splitlines() if part.strip()), type(error).__name__)
    return line if len(line) <= _MAX_DETAIL else line[:_MAX_DETAIL] + "..."


@contextlib.contextmanager
def spark_errors(error_class: type[GraneroError], context: str) -> Iterator[None]:
    """Re-raise Spark/JVM failures inside the block as ``error_class("<context>: <reason>")``."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except GraneroError:
        raise
    except (PySparkException, Py4JError) as error:
        raise error_class(f"{context}: {describe(error)}") from error
