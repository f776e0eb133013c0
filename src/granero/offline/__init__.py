"""The offline side: Spark jobs' logic, the offline tables, and the point-in-time join.

    schema.py        the layout every view's table shares
    tables.py        the OfflineStore protocol; delta.py and parquet.py implement it
    sources.py       reading a view's batch source (pandas' nanosecond Parquet included)
    casts.py         the one cast rule: source type -> declared dtype, exact, checked or refused
    spark_casts.py   that rule as Spark columns (checked casts fail naming column and value)
    materialize.py   source window -> table rows -> one atomic window write
    as_of_join.py    the point-in-time join (pure DataFrame logic)
    local_as_of.py   the same join in process, on Arrow tables (no Spark)
    entity_rows.py   entity rows in: read, typed and checked for a training request
    retrieval.py     training sets and their manifests
    spark_session.py the one place a SparkSession is configured
    spark_errors.py  Spark and py4j errors -> Granero errors

Importing this package loads no Spark: modules import pyspark inside the functions that need it.
"""
