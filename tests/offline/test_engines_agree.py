"""Both pandas engines on random histories: identical frames, and the caller's rows as given.

``get_historical_features_pandas`` with engine="local" and engine="spark", on both backends:
frame to frame on random histories (values, dtypes, row order); then a property test over the
dtypes a caller's entity frame may have (keys as numpy, nullable, object or categorical columns,
timestamps of every unit, naive or in any zone, labels of any dtype, any index, zero rows): the
caller's columns come back exactly as given, the features with their documented dtypes and the
values the rule gives (checked against the same rows in the canonical dtypes, which the oracle
tests in ``test_retrieval`` cover).
"""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from granero.offline.retrieval import ENGINE_ATTR
from tests.offline.conftest import BACKENDS, make_feature_store
from tests.offline.random_data import BASE, FEATURE_DTYPES, as_time, generate
from tests.offline.test_retrieval import OUTPUTS, REFS, WINDOW, definitions, pandas_entities

pytestmark = pytest.mark.spark


def cross_entities(entities: list[dict], seed: int) -> pd.DataFrame:
    """Pandas entity rows with naive nanosecond times (UTC by rule) and extra columns; some rows
    lie before any data."""
    rng = random.Random(seed)
    frame = pandas_entities(entities)
    nanos = [rng.choice([0, 0, 0, 1, 999]) for _ in entities]
    frame["event_timestamp"] = frame["event_timestamp"].dt.tz_convert(None) + pd.to_timedelta(nanos, unit="ns")
    frame["weight"] = [rng.choice([0.5, np.nan, 2.0]) for _ in entities]
    frame["note"] = pd.array([rng.choice(["x", None]) for _ in entities], dtype="string")
    early = frame.head(3).assign(event_timestamp=pd.Timestamp(BASE - timedelta(days=1)).tz_convert(None))
    return pd.concat([frame, early], ignore_index=True)


@pytest.fixture(scope="module", params=BACKENDS)
def cross_store(request, spark, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(f"cross_{request.param}")
    entities, tables = generate(11, n_rows=150, n_entities=150)
    store = make_feature_store(tmp_path, definitions(tmp_path, spark, tables), request.param)
    store.materialize(*WINDOW, sync_online=False)
    return store, cross_entities(entities, 11), entities


@pytest.mark.parametrize("full_names", [True, False])
def test_both_engines_give_identical_frames_on_random_histories(cross_store, full_names):
    store, given_rows, _ = cross_store
    refs = REFS if full_names else ["pair:f_list", "text:f_bool", "single:f_int"]
    local, spark_made = (
        store.get_historical_features_pandas(given_rows, refs, full_feature_names=full_names, engine=engine)
        for engine in ("local", "spark")
    )
    assert (local.attrs[ENGINE_ATTR], spark_made.attrs[ENGINE_ATTR]) == ("local", "spark")
    pd.testing.assert_frame_equal(local, spark_made)
    pd.testing.assert_frame_equal(local[given_rows.columns], given_rows)  # ns, naive: as given
    features = local.columns[len(given_rows.columns):]
    assert local[features].notna().sum().min() > 10 and local[features].isna().sum().min() > 10


# -- the caller's dtypes, property-based ------------------------------------------------------------

INT_KEY = ["int64", "int32", "Int64", "Int32", "category", "object"]
"""How a caller may hold an int key (numpy ints hold no null: a null makes them nullable)."""
STRING_KEY = ["object", "string", "category"]
UNITS = ["s", "ms", "us", "ns"]
ZONES = [None, "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
FEATURE_PANDAS_DTYPES = {"float64": "float64", "int64": "Int64", "bool": "boolean", "string": "object"}
"""The documented dtypes of feature columns (lists are objects)."""


def _labels(rows: list[dict]) -> dict[str, pd.Series]:
    """Columns a caller may carry besides the join columns, one per dtype; the engines never
    convert them (a mixed object column or uint64 would not even survive Arrow or Spark)."""
    n, label = len(rows), [r["label"] for r in rows]
    ordinal = np.arange(n)
    return {
        "label": pd.Series(label, dtype="int64"),
        "label32": pd.Series(label, dtype="int32"),
        "label8": pd.Series(label, dtype="int8"),
        "nlabel": pd.Series([v or None for v in label], dtype="Int64"),
        "u64": pd.Series(np.arange(n, dtype="uint64") + np.uint64(2**63)),
        "weight": pd.Series(ordinal / 3, dtype="float32"),
        "score": pd.Series([np.nan if v else 0.5 for v in label], dtype="float64"),
        "flag": pd.Series([bool(v) for v in label], dtype="bool"),
        "nflag": pd.Series([bool(v) if v else None for v in label], dtype="boolean"),
        "name": pd.Series([f"r{i}" if i % 3 else None for i in ordinal], dtype=object),
        "sname": pd.Series([f"r{i}" for i in ordinal], dtype="string"),
        "cat": pd.Series(["yes" if v else "no" for v in label], dtype="category"),
        "at": pd.Series(pd.to_datetime(["2020-02-29 01:02:03.000000123"] * n), dtype="datetime64[ns]"),
        "at_tokyo": pd.Series(pd.to_datetime(["2020-02-29"] * n), dtype="datetime64[ns]")
        .dt.tz_localize("Asia/Tokyo").astype("datetime64[ms, Asia/Tokyo]"),
        "span": pd.Series(pd.to_timedelta(ordinal, unit="s")),
        "mixed": pd.Series([[1, "x", None, 2.5][i % 4] for i in ordinal], dtype=object),
    }


def _key(values: list, dtype: str) -> pd.Series:
    if dtype in ("int64", "int32") and None in values:
        dtype = dtype.capitalize()
    return pd.Series(values, dtype=dtype)


def _times(micros: list[int | None], unit: str, zone: str | None) -> pd.Series:
    instants = pd.Series(pd.to_datetime([as_time(m) for m in micros], utc=True)).dt.floor(unit)
    local = instants.dt.tz_convert(zone) if zone else instants.dt.tz_localize(None)
    return local.astype(f"datetime64[{unit}, {zone}]" if zone else f"datetime64[{unit}]")


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """The same join columns in the dtypes the oracle tests use, on a plain index."""
    ts = frame["event_timestamp"]
    utc = ts.dt.tz_convert("UTC") if ts.dt.tz is not None else ts.dt.tz_localize("UTC")
    return pd.DataFrame({
        "a": frame["a"].astype(object).astype("Int64"),
        "b": frame["b"].astype(object).astype("Int32"),
        "s": frame["s"].astype(object).where(frame["s"].notna(), None),
        "t": frame["t"].astype(object).where(frame["t"].notna(), None),
        "event_timestamp": utc.astype("datetime64[ns, UTC]"),
    }).reset_index(drop=True)


@st.composite
def caller_frames(draw, rows: list[dict]) -> pd.DataFrame:
    """Entity frames over ``rows``: a random selection, the join columns in random dtypes and
    column order, random extra columns, a random index; zero rows included."""
    chosen = [rows[i] for i in draw(st.lists(st.integers(0, len(rows) - 1), max_size=30))]
    columns = {
        "a": _key([r["a"] for r in chosen], draw(st.sampled_from(INT_KEY))),
        "b": _key([r["b"] for r in chosen], draw(st.sampled_from(INT_KEY))),
        "s": _key([r["s"] for r in chosen], draw(st.sampled_from(STRING_KEY))),
        "t": _key([r["t"] for r in chosen], draw(st.sampled_from(STRING_KEY))),
    }
    unit, zone = draw(st.sampled_from(UNITS)), draw(st.sampled_from(ZONES))
    columns["event_timestamp"] = _times([r["ts"] for r in chosen], unit, zone)
    labels = _labels(chosen)
    columns.update({n: labels[n] for n in draw(st.lists(st.sampled_from(sorted(labels)), unique=True))})
    names = draw(st.permutations(list(columns)))
    frame = pd.DataFrame({n: columns[n].reset_index(drop=True) for n in names})
    index = draw(st.sampled_from(["range", "reversed", "strings", "repeated"]))
    if index != "range":
        frame.index = {
            "reversed": pd.Index(np.arange(len(frame))[::-1] * 10, name="id"),
            "strings": pd.Index([f"e{i}" for i in range(len(frame))]),
            "repeated": pd.Index([7] * len(frame)),
        }[index]
    return frame


def check_frame_as_given(store, frame: pd.DataFrame, engine: str) -> pd.DataFrame:
    """The caller's columns exactly as given, the features in their documented dtypes and with
    the values the same rows get in the canonical dtypes."""
    result = store.get_historical_features_pandas(frame, REFS, engine=engine)
    assert result.attrs[ENGINE_ATTR] == engine
    assert list(result.columns) == [*frame.columns, *OUTPUTS]
    pd.testing.assert_frame_equal(result[frame.columns], frame, check_exact=True)
    for output in OUTPUTS:
        dtype = FEATURE_DTYPES[output.split("__")[1]]
        assert str(result[output].dtype) == FEATURE_PANDAS_DTYPES.get(dtype, "object"), output
    canonical = store.get_historical_features_pandas(_canonical(frame), REFS, engine="local")
    pd.testing.assert_frame_equal(result[OUTPUTS].reset_index(drop=True), canonical[OUTPUTS])
    return result


def test_the_callers_columns_come_back_as_given_in_process(cross_store):
    store, _, rows = cross_store

    @settings(max_examples=150, deadline=None, derandomize=True, database=None)
    @given(caller_frames(rows))
    def check(frame):
        check_frame_as_given(store, frame, "local")

    check()


def test_the_callers_columns_come_back_as_given_through_spark(cross_store):
    """Few examples (a Spark job each); the first, derandomized, is the empty frame."""
    store, _, rows = cross_store

    @settings(max_examples=4, deadline=None, derandomize=True, database=None)
    @given(caller_frames(rows))
    def check(frame):
        through_spark = check_frame_as_given(store, frame, "spark")
        local = store.get_historical_features_pandas(frame, REFS, engine="local")
        pd.testing.assert_frame_equal(through_spark, local)

    check()
