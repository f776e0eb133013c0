"""Incremental materialization that never loses late rows.

``plan`` decides, purely, which event-time windows a run (re)materializes and why;
``delta_log`` reads what a Delta source's commits changed without reading data;
``delta_source`` does the I/O around it; ``planner`` puts one view's plan together with the
source mark (``registry.source_progress``) the facade records once the windows committed.
"""

from granero.incremental.plan import Change, Rerun, plan_windows
from granero.incremental.planner import IncrementalPlanner, ViewPlan

__all__ = ["Change", "IncrementalPlanner", "Rerun", "ViewPlan", "plan_windows"]
