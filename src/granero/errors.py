"""Granero's error tree.

    GraneroError                      every error Granero raises on purpose
    ├── ConfigError                   feature_store.yaml is missing or invalid
    ├── DefinitionError               a definition file or object is invalid (names file/definition/field)
    ├── RegistryError                 the registry cannot be read or written
    │   └── BreakingChangeError       apply would break stored data; retry with force
    ├── MaterializationError          a Spark job failed; the stores are left as they were
    ├── RetrievalError                a training-set request is invalid or failed
    ├── InvalidRequest                an online request is malformed (bad key, bad value...)
    │   └── UnknownName               it names a view, feature or service the registry lacks (also a NotFound)
    ├── OnlineStoreUnavailable        Redis cannot be reached
    ├── VerificationFailed            online values differ from the offline point-in-time values
    ├── StaleViews                    an online view's newest value is older than asked (status --stale-after)
    ├── TransformError                an on-demand transform raised, or returned a wrong length/dtype
    ├── TransformCodeChanged          the transform code loaded is not the code applied
    ├── NotFound                      a named object does not exist
    ├── Unauthenticated               no credentials, or credentials that do not verify
    └── PermissionDenied              not allowed, or no such object (never says which)

Each class carries the gRPC status code name it maps to, so the server translates errors by
lookup and never needs logic of its own. The CLI's exit code is the class's ``exit_code``: any
unknown named object exits 8, whichever command named it. Codes are names (not grpc enums) so this module does not
import grpc.
"""

from __future__ import annotations


class GraneroError(Exception):
    """Root of all errors raised by Granero on purpose."""

    grpc_code = "INTERNAL"
    exit_code = 1


class ConfigError(GraneroError):
    grpc_code = "FAILED_PRECONDITION"
    exit_code = 2


class DefinitionError(GraneroError):
    grpc_code = "FAILED_PRECONDITION"
    exit_code = 2


class RegistryError(GraneroError):
    grpc_code = "FAILED_PRECONDITION"
    exit_code = 3


class BreakingChangeError(RegistryError):
    exit_code = 4


class MaterializationError(GraneroError):
    grpc_code = "INTERNAL"
    exit_code = 5


class RetrievalError(GraneroError):
    grpc_code = "INVALID_ARGUMENT"
    exit_code = 6


class InvalidRequest(GraneroError):
    grpc_code = "INVALID_ARGUMENT"
    exit_code = 2


class OnlineStoreUnavailable(GraneroError):
    grpc_code = "UNAVAILABLE"
    exit_code = 7


class VerificationFailed(GraneroError):
    grpc_code = "FAILED_PRECONDITION"
    exit_code = 9


class StaleViews(GraneroError):
    """An online view's newest value online is older than the threshold asked (``granero status
    --stale-after``), or was never written: for monitoring to alert on."""

    grpc_code = "FAILED_PRECONDITION"
    exit_code = 14


class TransformError(GraneroError):
    """An on-demand transform raised, or returned a missing output, a wrong length or a dtype
    that does not convert without loss. Names the view, the output and the transform."""

    grpc_code = "FAILED_PRECONDITION"
    exit_code = 12


class TransformCodeChanged(GraneroError):
    """The transform code loaded from the repo differs from the code recorded by ``apply``:
    run ``granero apply`` (and retrain) or deploy the applied code."""

    grpc_code = "FAILED_PRECONDITION"
    exit_code = 13


class NotFound(GraneroError):
    grpc_code = "NOT_FOUND"
    exit_code = 8


class UnknownName(InvalidRequest, NotFound):
    """A request names a feature view, feature or feature service the registry does not hold.

    Exit 8 like every unknown named object; over gRPC INVALID_ARGUMENT, since the request is what
    is wrong (the RPC addresses no resource of that name, unlike DescribeFeatureView's NOT_FOUND).
    """

    grpc_code = "INVALID_ARGUMENT"
    exit_code = 8


class Unauthenticated(GraneroError):
    """The caller presented no credentials where some are required, or ones that do not verify."""

    grpc_code = "UNAUTHENTICATED"
    exit_code = 10


class PermissionDenied(GraneroError):
    """The caller may not do this, or the named object does not exist: the message never tells
    which, so a caller learns nothing of objects it may not see."""

    grpc_code = "PERMISSION_DENIED"
    exit_code = 11
