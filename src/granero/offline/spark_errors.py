"""The one place Spark's and py4j's exceptions become Granero errors.

Spark reports failures as ``PySparkException`` subclasses (analysis errors, task failures such as
``raise_error``) or, for JVM errors PySpark does not convert, as ``Py4JJavaError``. Callers wrap
a unit of work in ``spark_errors(MaterializationError, "materializing view 'x'")`` and get one
precise line instead of a JVM stack trace.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from granero.errors import GraneroError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

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
        raised_in_worker = worker_error(str(error))
        if raised_in_worker is not None:  # e.g. an on-demand transform's TransformError
            raise raised_in_worker from error
        raise error_class(f"{context}: {describe(error)}") from error


_WORKER_RAISED = re.compile(r"^granero\.errors\.(\w+): (.+)$", re.MULTILINE)


def worker_error(text: str) -> GraneroError | None:
    """The Granero error a Python worker raised, as reported in a Spark error's text (None when
    there is none): the same class and message as in process."""
    from granero import errors

    match = _WORKER_RAISED.search(text)
    found = getattr(errors, match[1], None) if match else None
    if isinstance(found, type) and issubclass(found, GraneroError):
        return found(match[2].strip())  # type: ignore[index]
    return None


def arrow_frame(spark: SparkSession, rows: pa.Table, schema: StructType | None, context: str) -> DataFrame:
    """``rows`` as a Spark DataFrame of ``schema`` (None: Arrow's types); a column Arrow cannot convert to its Spark
    type is a MaterializationError ``"<context>: <reason>"`` instead of Arrow's own error."""
    import pyarrow as pa

    from granero.errors import MaterializationError

    with spark_errors(MaterializationError, context):
        try:
            return spark.createDataFrame(rows, schema=schema)
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise MaterializationError(f"{context}: {error}") from error
