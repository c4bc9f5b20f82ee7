"""The diagnosis engine: the method of ../shared/guidance.md (see
docs/diagnosis.md) as incremental detectors over the run store.

Imports the store, numpy and the standard library only: no textual, rich or
torch.

    from tui_monitor.diagnose import Diagnoser
    engine = Diagnoser(store, baseline="resnet20")
    changes = engine.update()          # on the UI timer: only new points are read
    engine.findings                    # most urgent first
    engine.decision_path(run.key)      # where a run stands on each question
    engine.cv_summaries()              # N-fold cross-validation groups
"""
from .compare import CVSummary
from .engine import Changes, Diagnoser
from .findings import ADVICE, GUIDANCE, KINDS, SEVERITIES, SYMPTOMS, Finding
from .path import Decision, DecisionPath
from .reference import Task, task_of
from .report import SCHEMA_VERSION, report_dict, report_text
from .settings import Settings

__all__ = [
    "Diagnoser", "Changes", "Finding", "DecisionPath", "Decision", "CVSummary", "Settings", "Task", "task_of",
    "KINDS", "SYMPTOMS", "SEVERITIES", "GUIDANCE", "ADVICE", "report_dict", "report_text", "SCHEMA_VERSION",
]
