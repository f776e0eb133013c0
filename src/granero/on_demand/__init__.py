"""On-demand features at run time: the transform runner, its output rule and code identity.

Pure (Arrow and numpy only; no Spark, Redis or gRPC): serving calls it per request batch,
training per Arrow batch (in process, or inside a Spark ``mapInArrow``), with the same function.

    request.split_request    a request's lookups (hidden inputs included) and on-demand outputs
    runner.run_transform     inputs (name -> Arrow array) -> outputs, checked
    runner.run_batch         the same, for inputs a serving plan built (not checked again)
    runner.row_outputs       a row-mode transform on Python values (the request path's), its
                             plain outputs left as Python values: no Arrow array built
    arrays.typed_array       Python values of a known dtype -> the Arrow array pa.array gives,
                             fixed-width ones packed into a buffer (the request path's inputs)
    arrays.plain_column      a row-mode output taken as is when plainly of its dtype
    rows.feature_values      a read's column as the Python values a row transform sees
    conform.lossless_cast    a returned column to its declared dtype, never lossily
    identity                 loaded code vs the code recorded by apply
    probe                    the load-time run on a batch of the input dtypes (with nulls)
    request_values           request values from the wire or the API, typed (serving)

Training's Spark side (``mapInArrow``) lives in ``offline.on_demand_training``, write-time
transforms' in ``offline.write_transform``: both call ``runner`` on each Arrow batch.
"""

from granero.on_demand.identity import check_code_identity, library_drift, loaded_views
from granero.on_demand.runner import run_transform

__all__ = ["check_code_identity", "library_drift", "loaded_views", "run_transform"]
