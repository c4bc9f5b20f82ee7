"""``tui-monitor diagnose``: read runs the way ``watch --once`` does, and print the findings.

Files and folders go through the same ingest as ``watch`` (every format it
follows: stream files, TensorBoard event files, CSV logs, text logs named on
the command line, standard input), read to their end in this thread, the
reader's fast-path records straight into the store. Every path must yield a
run: a CI gate pointed at something it cannot read fails (exit 2) instead of
passing on nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, List, Set, Tuple

from ..diagnose import Diagnoser, report_dict, report_text
from ..diagnose.report import exit_status
from ..safe_text import clean, json_escapes
from . import PROG, task_override

#: How each format is named in messages, for a folder and for one file; a
#: format missing here (a reader added later) goes by its registry name.
_LOOKED_FOR = {
    "jsonl": ("stream files (*.jsonl)", "a stream file"),
    "tensorboard": ("TensorBoard event files", "a TensorBoard event file"),
    "wandb": ("W&B offline runs", "a W&B run file"),
    "mlflow": ("MLflow runs", "an MLflow metric file"),
    "hf-trainer": ("Hugging Face trainer_state.json", "a Hugging Face trainer state"),
    "csv": ("CSV metric logs", "a CSV metric log"),
    "text": ("printed training logs (*.log, *.txt, *.out, *.err)", "a printed training log"),
}


def _described(name: str, one: bool = False) -> str:
    return _LOOKED_FOR.get(name, (f"{name} logs", f"a {name} log"))[one]


def looked_for() -> str:
    """What a folder is searched for, in words, from the format registry."""
    from ..sources.registry import FORMATS

    names = [_described(f.name) for f in FORMATS]
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def no_run_message(path: str) -> str:
    """Why ``path`` gave no run, naming what was looked for."""
    if path == "-":
        return "no run on standard input: no line of it read as metrics (see --parse-regex)"
    if os.path.isdir(path):
        return f"no runs under {clean(path)}: looked for {looked_for()}"
    from ..sources.registry import identify

    fmt = identify(path, explicit=True).format
    kind = _described(fmt.name, one=True) if fmt is not None else "a log"
    return f"no run in {clean(path)}: read it as {kind} and found no metrics"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _noting(source: Any, delivered: Set[Any]) -> None:
    """Make ``source`` note in ``delivered`` each stream it gives records of."""
    forward = source.on_records

    def on_records(stream: Any, records: List[Any]) -> None:
        delivered.add(stream)
        forward(stream, records)
    source.on_records = on_records


def read_runs(paths: List[str], parse_regex: List[str]) -> Tuple[Any, Any, List[str]]:
    """Every run under ``paths`` (``-``: standard input), read to the end as
    ``watch --once`` reads them: the store, the ingest (for its problems) and
    the paths that yielded no run. Raises ValueError for a bad
    ``parse_regex``."""
    from ..sources import Follower, open_ingest
    from ..sources.text import attach, compile_patterns

    patterns = compile_patterns(parse_regex)
    store, ingest = open_ingest([p for p in paths if p != "-"], start=False)
    delivered: Set[Any] = set()
    followers = [f for f in ingest.followers if isinstance(f, Follower)]
    for follower in followers:  # the tails its scans make take its on_records
        _noting(follower, delivered)
    stdin = attach(ingest, patterns, "-" in paths)
    if stdin is not None:
        _noting(stdin, delivered)
    ingest.read_all()
    empty = []
    for root in paths:
        if root == "-":
            keys = [stdin.key]
        else:
            keys = [t.key for f in followers for p, t in f.tails.items() if _under(p, root)]
        if not any(k in delivered for k in keys):
            empty.append(root)
    return store, ingest, empty


def run(args: argparse.Namespace) -> int:
    from . import follow  # --follow: commands/follow.py
    if args.follow:
        return follow.run(args)
    misuse = follow.misuse(args)
    if misuse:
        print(f"{PROG} diagnose: {misuse}", file=sys.stderr)
        return 2
    missing = [p for p in args.paths if p != "-" and not os.path.exists(p)]
    if missing:
        print(f"{PROG}: no such file or folder: {clean(missing[0])}", file=sys.stderr)
        return 2
    try:
        store, ingest, empty = read_runs(list(args.paths), args.parse_regex)
    except ValueError as e:  # a bad --parse-regex
        print(f"{PROG} diagnose: {clean(e)}", file=sys.stderr)
        return 2
    from ..summary import problem_lines

    for line in problem_lines(*ingest.recent_problems()):  # what could not be read is said, the rest diagnosed
        print(f"{PROG}: {line}", file=sys.stderr)
    if empty:
        for path in empty:
            print(f"{PROG}: {no_run_message(path)}", file=sys.stderr)
        return 2
    engine = Diagnoser(store, baseline=args.baseline, task=task_override(args))
    engine.update()
    if args.baseline and not any(args.baseline in (r.name, r.run_id) for r in store):
        print(f"{PROG}: no run named {clean(args.baseline)}", file=sys.stderr)
        return 2
    if args.json:
        text = json.dumps(report_dict(engine), ensure_ascii=False, allow_nan=False)
        sys.stdout.write(text.translate(json_escapes()) + "\n")
    else:
        sys.stdout.write(report_text(engine, clean))
    return exit_status(engine)
