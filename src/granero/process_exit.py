"""Ending a long-running process after its work stopped cleanly, without interpreter teardown.

Native libraries leave threads behind (grpc's, the py4j gateway's, delta-rs' async runtime); under
load, one of them touching the interpreter while it finalizes can abort it ("PyGILState_Release:
thread state ... must be current when releasing", exit -6, seen after a clean stream stop), which
turns a clean stop into a failure for whoever watches the exit code (a parent, Kubernetes).
"""

from __future__ import annotations

import logging
import os
import sys


def exit_without_teardown(code: int) -> None:
    """Flush logs and standard streams, then exit at once with ``code``."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
