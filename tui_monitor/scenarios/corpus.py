"""Generate the labelled corpus: every scenario, several seeds, into one
directory, with a manifest (``corpus.json``) that holds the expected labels.

Runs go to worker processes (``workers``, default 2), each importing torch
once; with 3 seeds the whole corpus takes about a minute of CPU.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from . import HEALTHY, SCENARIOS

__all__ = ["jobs", "generate", "load_manifest", "MANIFEST"]

MANIFEST = "corpus.json"

Job = Tuple[str, int, int]  # (scenario, seed, fold)


def jobs(seeds: Sequence[int] = (0, 1, 2), scenarios: Optional[Iterable[str]] = None,
         folds: int = 5) -> List[Job]:
    """The runs of the corpus: every scenario for every seed (``cv_fold``
    once per fold)."""
    names = list(scenarios) if scenarios is not None else list(SCENARIOS)
    out: List[Job] = []
    for seed in seeds:
        for name in names:
            if name == "cv_fold":
                out.extend((name, seed, k) for k in range(folds))
            else:
                out.append((name, seed, 0))
    return out


def _work(args) -> Dict[str, object]:
    name, seed, fold, directory, steps = args
    from .train import run_scenario

    t0 = time.perf_counter()
    path = run_scenario(name, directory, seed, fold=fold, steps=steps)
    return {"path": os.path.relpath(path, directory), "seconds": round(time.perf_counter() - t0, 3)}


def generate(directory, seeds: Sequence[int] = (0, 1, 2), scenarios: Optional[Iterable[str]] = None,
             workers: int = 2, steps: Optional[int] = None, folds: int = 5) -> List[Dict[str, object]]:
    """Train the corpus into ``directory`` (created) and write its manifest;
    return the manifest's entries: ``path`` (relative to ``directory``),
    ``scenario``, ``seed``, ``fold``, ``label``, ``symptom``, ``onset``,
    ``group``, ``seconds``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    todo = jobs(seeds, scenarios, folds)
    args = [(name, seed, fold, str(directory), steps) for name, seed, fold in todo]
    if workers <= 1 or len(args) <= 1:
        results = [_work(a) for a in args]
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no torch state shared with the parent
        pool = ctx.Pool(min(workers, len(args)))
        try:
            results = pool.map(_work, args, chunksize=1)
            pool.close()  # the workers end on their own once the work is done: no signal to race
            pool.join()
        finally:
            pool.terminate()  # after an error: stop what is left
    entries = []
    for (name, seed, fold), res in zip(todo, results):
        sc = SCENARIOS[name]
        entries.append({"path": res["path"], "scenario": name, "seed": seed, "fold": fold, "label": sc.label,
                        "symptom": sc.symptom, "onset": sc.onset, "group": sc.group,
                        "seconds": res["seconds"]})
    (directory / MANIFEST).write_text(json.dumps({"version": 1, "healthy": HEALTHY, "runs": entries}, indent=1))
    return entries


def load_manifest(directory) -> List[Dict[str, object]]:
    """The entries of a generated corpus's manifest, paths made absolute."""
    directory = Path(directory)
    data = json.loads((directory / MANIFEST).read_text())
    out = []
    for e in data["runs"]:
        e = dict(e)
        e["path"] = str(directory / e["path"])
        out.append(e)
    return out
