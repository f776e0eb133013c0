"""Push: rows written by a caller rather than read from a batch source.

``rows`` (any container, Arrow-typed as given) -> ``validation`` (typed against the registered
view by the one cast rule; nothing is written unless every row passes) -> ``writer`` (land the
rows offline, then write them online write-if-newer). Used by ``FeatureStore.push``, the
``PushFeatures`` RPC and ``granero push``; no Spark is imported on this path.
"""

from granero.push.writer import TARGETS, PushResult, PushTarget, push_rows

__all__ = ["TARGETS", "PushResult", "PushTarget", "push_rows"]
