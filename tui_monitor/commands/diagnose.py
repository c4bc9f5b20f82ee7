"""``tui-monitor diagnose``: read stream files into a store and print the findings."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List

from ..diagnose import Diagnoser, report_dict, report_text
from ..diagnose.report import exit_status
from ..safe_text import clean, json_escapes
from ..schema import split_metric
from ..store import Store
from ..stream import read_file, record_to_json
from ..stream.files import NotRegularFile
from . import PROG, task_override


def run(args: argparse.Namespace) -> int:
    files: List[str] = []
    for path in args.paths:
        if os.path.isdir(path):
            for root, _, names in sorted(os.walk(path)):
                files.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(".jsonl"))
        elif os.path.exists(path):
            files.append(path)
        else:
            print(f"{PROG}: no such file or folder: {clean(path)}", file=sys.stderr)
            return 2
    if not files:
        print(f"{PROG}: no stream files (*.jsonl) under {clean(' '.join(args.paths))}", file=sys.stderr)
        return 2
    store = Store(splitter=split_metric)
    for f in files:
        try:
            records, _ = read_file(f)
        except NotRegularFile as e:  # a FIFO or a device named *.jsonl: said, and the rest is read
            print(f"{PROG}: {clean(f)}: {clean(e.strerror)}", file=sys.stderr)
            continue
        except OSError as e:
            print(f"{PROG}: cannot read {clean(f)}: {clean(e.strerror or e)}", file=sys.stderr)
            return 2
        store.apply_many([record_to_json(r) for r in records], stream=f)
    store.mark_stopped()  # a run with no end record and nothing written for a day: stopped, not running
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

