"""Access control: who is calling, what they may do, and the trail of it.

    principal.py      Principal, Credentials, the Authenticator protocol and the chain
    tokens.py         static API tokens, stored hashed in a watched file
    jwt_bearer.py     JWTs verified against a JWKS or PEM file (no network call)
    mtls.py           the verified client certificate's names
    config.py         ``access:`` in feature_store.yaml
    permissions.py    the registry's Permission definitions evaluated (pure)
    pii.py            which fields are personal data
    guard.py          authenticators + the policy of the served registry version
    interceptor.py    the one gRPC interceptor enforcing it (imports grpc)
    facade.py         the Python API's and CLI's advisory checks
    audit.py          the JSON-lines audit log

Importing this package loads neither grpc nor PyJWT; those load with the modules that use them.
"""
