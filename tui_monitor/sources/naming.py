"""Names for runs read from logs, that tell runs apart.

The writers' folder layouts repeat the same names in every project
(``lightning_logs/version_0``, ``runs/detect/train``, ``logs/train``,
``checkpoint-500``): a name made of the last folder alone would call runs of
two projects the same. A run is named after its folder, with the folders
above it as long as they are such generic names, up to the first that is
not (the project's): ``projA/lightning_logs/version_0``. A file with a name
of its own (``keras.csv``, ``slurm-1234.out``) names its run; a generic one
(``metrics.csv``, ``log.txt``, ``training.log``) names it after its folder.
"""
from __future__ import annotations

import os
import re

__all__ = ["folder_run_name", "file_run_name", "is_generic_folder"]

_GENERIC_FOLDER = re.compile(
    r"(lightning_logs|logs?|runs?|outputs?|results?|checkpoints?|ckpts?|tb_logs|tensorboard|tb|events|"
    r"csv_logs|metrics|train|training|val|valid|validation|eval|test|version_\d+|checkpoint-\d+|exp|"
    r"experiments?|files|\d+)\Z", re.IGNORECASE)
_GENERIC_FILE = re.compile(
    r"(metrics|results|summary|history|training|train|log|logs|output|out|stdout|stderr|nohup|"
    r"trainer_state|progress)\.(csv|log|txt|out|json|err)\Z", re.IGNORECASE)
#: Folders taken at most, going up.
DEPTH = 4


def is_generic_folder(name: str) -> bool:
    return bool(_GENERIC_FOLDER.match(name))


def folder_run_name(folder: str) -> str:
    """``folder``'s name, with the folders above it while they are generic
    (at most :data:`DEPTH` in all)."""
    folder = os.path.abspath(folder)
    parts = []
    while len(parts) < DEPTH:
        base = os.path.basename(folder)
        if not base:
            break
        parts.insert(0, base)
        if not is_generic_folder(base):
            break
        folder = os.path.dirname(folder)
    return "/".join(parts) or folder


#: Files that are a run's one log by their writer's convention (Lightning,
#: Ultralytics, timm): the run is named after the folder alone.
_ONE_PER_FOLDER = ("metrics.csv", "results.csv", "summary.csv")


def file_run_name(path: str, keep_extension: bool = False) -> str:
    """A run read from one file: the file's own name (its stem, unless
    ``keep_extension``) when it has one; a generic one after its folder
    (``nanogpt/log.txt``, ``project/training.log``), or the folder alone for
    a writer's one log per folder (``metrics.csv``)."""
    base = os.path.basename(path)
    if not _GENERIC_FILE.match(base):
        return base if keep_extension else os.path.splitext(base)[0]
    folder = folder_run_name(os.path.dirname(os.path.abspath(path)))
    return folder if base in _ONE_PER_FOLDER else f"{folder}/{base}"
