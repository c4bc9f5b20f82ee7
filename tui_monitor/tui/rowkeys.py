"""Keys of the runs panel's rows: a run's (``"run_id\\x00rank"``), a fold
group's and a multi-rank job's. The prefixes live here alone, so one kind of
key is never read as another."""
from __future__ import annotations

from typing import Optional

__all__ = ["GROUP_PREFIX", "JOB_PREFIX", "group_key", "group_of_key", "job_key", "job_of_key"]

GROUP_PREFIX = "\x01group\x00"
JOB_PREFIX = "\x01job\x00"


def _named(key: Optional[str], prefix: str) -> Optional[str]:
    return key[len(prefix):] if key is not None and key.startswith(prefix) else None


def group_key(name: str) -> str:
    return GROUP_PREFIX + name


def group_of_key(key: Optional[str]) -> Optional[str]:
    """The fold group a group row's key names, or None for any other row."""
    return _named(key, GROUP_PREFIX)


def job_key(run_id: str) -> str:
    return JOB_PREFIX + run_id


def job_of_key(key: Optional[str]) -> Optional[str]:
    """The job a job row's key names, or None for any other row."""
    return _named(key, JOB_PREFIX)
