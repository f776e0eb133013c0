"""Time-window aggregations: one rule, one set of tile functions, for training and serving alike.

The rule. A view's aggregate ``f(column) over W`` at request time ``t`` aggregates exactly the
events ``e`` of the entity with ``tail(t) <= e.ts <= t``, where ``tail(t) = floor_to_hop(t - W)``
and ``floor_to_hop(x) = x - (x mod hop)`` on UTC microseconds since the epoch. The head is exact
and inclusive, like the as-of join's ``[ts - ttl, ts]``; the tail is rounded down to a hop
boundary ("sawtooth", as in Chronon), so the span covered is between W and W + hop::

    hop = 1h, W = 3h, t = 10:20                                     tail(10:20) = 07:00
          06:00    07:00    08:00    09:00    10:00    11:00
            |........|========|========|========|==+.....|
                     ^ tail    whole tiles (3)     ^ head tile, events <= t only
                     |<---------- W + (t - 10:00) -->|
    at t = 10:59 the tail is still 07:00; at t = 11:00 it jumps to 08:00 (the sawtooth)

Tiles are ``[h, h + hop)`` for hop-aligned ``h``. The window at t is the tiles ``tail(t) ..
floor_to_hop(t)``: W / hop whole tiles, then the head tile, of which only events ``<= t`` count.
Online, materialization never stores events later than its run, so the stored head tile is that.

Values. An empty window yields count 0, sum 0 (int64 or float64) and distinct count 0; every other
function yields null. Nulls of the column are skipped by every function (``count`` counts non-null
values, SQL's ``COUNT(column)``: count a key column to count events). first/last order events by
(event time, created time), a null created lowest, and take the greatest value among full ties,
the row materialization keeps. variance/stddev are the sample ones (null below two values),
merged from (count, mean, M2) with Chan's formula. Distinct counts are exact (a set per tile).

Identity of online and offline values, by construction: both build tile states with the same
``build`` (a tile's state depends only on its events, sums over its values sorted ascending) and
merge a window's tiles with the same ``merge`` in one order, newest first (``tiles``). Floating
sums are therefore bit-identical, not merely close.

    window.py       hop alignment: floor_to_hop, tail, the tiles a window reads at t
    value_order.py  the value order (NaN above numbers, -0.0 below 0.0) as int64 keys
    functions.py    the functions' tile states: build, merge, finalize, output dtype
    tiles.py        events -> tile states; tile states -> window states at many t at once
    engine.py       entity rows + events -> aggregate columns, in process (training retrieval)

Pure numpy/pyarrow: importing this package loads no Spark, Redis or gRPC.
"""
