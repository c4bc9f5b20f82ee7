"""Generate the labelled corpus: every scenario, several seeds, into one
directory, with a manifest (``corpus.json``) that holds the expected labels.

The streams are blind: a run is named by a digest (:func:`.train.blind_name`),
its data key is a digest, and nothing in it names its scenario; only the
manifest does. Runs go to worker processes (``workers``, default 2, at a
lower priority), each importing torch once; with 3 seeds the whole corpus
takes a few minutes of CPU.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import HEALTHY, SCENARIOS

__all__ = ["jobs", "generate", "load_manifest", "MANIFEST"]

MANIFEST = "corpus.json"

Job = Tuple[str, int, int]  # (scenario, seed, fold)


def jobs(seeds: Sequence[int] = (0, 1, 2), scenarios: Optional[Iterable[str]] = None,
         folds: int = 5, families: Optional[Iterable[str]] = None) -> List[Job]:
    """The runs of the corpus: every scenario (of ``families``, when given)
    for every seed (``cv_fold`` once per fold)."""
    names = list(scenarios) if scenarios is not None else list(SCENARIOS)
    if families is not None:
        keep = set(families)
        names = [n for n in names if SCENARIOS[n].family in keep]
    out: List[Job] = []
    for seed in seeds:
        for name in names:
            if name == "cv_fold":
                out.extend((name, seed, k) for k in range(folds))
            else:
                out.append((name, seed, 0))
    return out


def _lower_priority(nice: int) -> None:
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass


def _work(args) -> Dict[str, object]:
    name, seed, fold, directory, steps = args
    from .train import blind_name, run_scenario

    t0 = time.perf_counter()
    path = run_scenario(name, directory, seed, fold=fold, steps=steps, blind=True)
    return {"path": os.path.relpath(path, directory), "run_name": blind_name(name, seed, fold),
            "seconds": round(time.perf_counter() - t0, 3)}


def generate(directory, seeds: Sequence[int] = (0, 1, 2), scenarios: Optional[Iterable[str]] = None,
             workers: int = 2, steps: Optional[int] = None, folds: int = 5,
             families: Optional[Iterable[str]] = None, nice: int = 10,
             progress: Optional[Callable[[int, int], None]] = None) -> List[Dict[str, object]]:
    """Train the corpus into ``directory`` (created) and write its manifest;
    return the manifest's entries: ``path`` (relative to ``directory``),
    ``run_name``, ``scenario``, ``family``, ``seed``, ``fold``, ``label``,
    ``symptom``, ``onset``, ``group``, ``seconds``. ``progress(done, total)``
    is called as runs finish; the workers run ``nice``-d."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    todo = jobs(seeds, scenarios, folds, families)
    args = [(name, seed, fold, str(directory), steps) for name, seed, fold in todo]
    results: List[Optional[Dict[str, object]]] = [None] * len(args)
    if workers <= 1 or len(args) <= 1:
        for i, a in enumerate(args):
            results[i] = _work(a)
            if progress:
                progress(i + 1, len(args))
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no torch state shared with the parent
        pool = ctx.Pool(min(workers, len(args)), initializer=_lower_priority, initargs=(nice,))
        try:
            for done, (i, res) in enumerate(pool.imap_unordered(_indexed, list(enumerate(args)), chunksize=1), 1):
                results[i] = res
                if progress:
                    progress(done, len(args))
            pool.close()  # the workers end on their own once the work is done: no signal to race
            pool.join()
        finally:
            pool.terminate()  # after an error: stop what is left
    entries = []
    for (name, seed, fold), res in zip(todo, results):
        sc = SCENARIOS[name]
        entries.append({"path": res["path"], "run_name": res["run_name"], "scenario": name, "family": sc.family,
                        "seed": seed, "fold": fold, "label": sc.label, "symptom": sc.symptom, "onset": sc.onset,
                        "group": sc.group, "seconds": res["seconds"]})
    (directory / MANIFEST).write_text(json.dumps({"version": 2, "healthy": HEALTHY, "runs": entries}, indent=1))
    return entries


def _indexed(item):
    i, args = item
    return i, _work(args)


def load_manifest(directory) -> List[Dict[str, object]]:
    """The entries of a generated corpus's manifest, paths made absolute."""
    directory = Path(directory)
    data = json.loads((directory / MANIFEST).read_text())
    out = []
    for e in data["runs"]:
        e = dict(e)
        e["path"] = str(directory / e["path"])
        e.setdefault("family", SCENARIOS[e["scenario"]].family if e["scenario"] in SCENARIOS else "")
        out.append(e)
    return out
