"""Benchmarks of Granero side by side with Feast and raw Redis (``make bench``; see README.md).

Not part of the test suite and not shipped in the package. Every measurement runs in its own
process, so that a JVM, a Feast install or a load generator never shares an interpreter with
what it measures:

    run.py            orchestrates one run: data, repos, redis-server, phases, report
    granero_side.py   Granero's measurements (project venv), JSON in and out
    feast_side.py     Feast's measurements (bench/.venv-feast), JSON in and out, stdlib + feast only
    side.py           the JSON-in, JSON-out protocol both sides share (stdlib only)
    load.py           the bounded concurrent load generator (gRPC, HTTP, raw Redis)
"""
