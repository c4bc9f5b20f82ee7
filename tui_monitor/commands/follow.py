"""``tui-monitor diagnose --follow``: the diagnosis without a screen.

Follows files, folders, standard input or a listener the way ``watch`` does
(:func:`~tui_monitor.sources.open_ingest`), runs the engine on a timer and
prints what happened since the last update (:mod:`tui_monitor.events`): runs
started, gone silent, resumed and ended, findings raised, changed and
retracted; one line of text each, or one JSON object per line (``--json``).
Made for a tmux pane, a log file, a CI step or a pipe. ``--notify CMD`` pages
through :mod:`tui_monitor.notify`; ``--until-done`` stops when every run has
ended. No TUI import.

Exit status: with ``--until-done``, 0 when every run finished and nothing at
warning level or above stands, 1 when something does or a run crashed, was
interrupted or stopped (no end record, nothing heard for a day: nobody knows
that it finished); 2 for a usage or input error; 130 after Ctrl+C, 143 after
SIGTERM.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import threading
import time
from typing import List, Optional, Set, TextIO, Tuple

from ..events import DONE, Event, EventTracker, FindingEvent, RunEvent, history_read
from ..safe_text import clean
from ..stream.encode import json_text
from ..store import STOPPED_AFTER
from . import PROG, task_override

__all__ = ["run", "misuse", "event_line", "event_json", "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

#: Seconds between looks at the store; the least and the most between two engine updates.
POLL = 0.2
UPDATE_EVERY = 1.0
UPDATE_AT_LEAST = 5.0  # the time-based rules (a hung rank) need updates while nothing arrives
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_FOLLOW_ONLY = (("listen", "--listen"), ("until_done", "--until-done"), ("notify", "--notify"),
                ("poll", "--poll"), ("token_file", "--token-file"))


def misuse(args: argparse.Namespace) -> Optional[str]:
    """Why ``diagnose`` without ``--follow`` cannot run with these
    arguments (a flag of the follow mode, no path), or None."""
    given = [flag for name, flag in _FOLLOW_ONLY if getattr(args, name, None)]
    if given:
        return f"{given[0]} is for the follow mode: add --follow"
    if not args.paths:
        return "give a file or folder to diagnose (or --follow --listen ADDR)"
    return None


def run(args: argparse.Namespace) -> int:
    error = _check(args)
    if error:
        print(f"{PROG} diagnose: {error}", file=sys.stderr)
        return 2
    paths = [p for p in args.paths if p != "-"] or ([] if args.listen or "-" in args.paths else ["runs"])
    stdin = "-" in args.paths
    from ..sources import open_ingest
    from ..sources.text import attach, compile_patterns
    from .watch import listen_token
    try:
        patterns = compile_patterns(getattr(args, "parse_regex", None) or [])
        store, ingest = open_ingest(paths, listen=args.listen, token=listen_token(args),
                                    poll=args.poll or None, start=False, silent_after=args.silent_after)
        attach(ingest, patterns, stdin)
        ingest.start()
    except (OSError, ValueError) as e:
        print(f"{PROG} diagnose: {clean(e)}", file=sys.stderr)
        return 2
    from ..diagnose import Diagnoser

    engine = Diagnoser(store, baseline=args.baseline, task=task_override(args))
    _say(_started_text(args, paths, stdin))
    tracker = EventTracker(store, ready=history_read(ingest),
                           on_ready=lambda n: _say(f"read what was there: {n} run{'s' * (n != 1)}; "
                                                   "what comes now is followed live"))
    from ..notify import finish, from_args

    notifier = from_args(args, on_failure=lambda text: _say(f"{text} (reported once; the monitor goes on)"))
    stop = threading.Event()
    previous = _on_sigterm(stop)
    status = EXIT_INTERRUPTED
    try:
        status = _follow(args, engine, ingest, tracker, notifier, stop, sys.stdout)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    finally:
        tracker.stop()
        ingest.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if notifier is not None:
            finish(notifier, _say)
    return status


def _check(args: argparse.Namespace) -> Optional[str]:
    from ..notify import options_error

    error = options_error(args)
    if error:
        return error
    if not args.paths and not args.listen and not os.path.isdir("runs"):
        return "give a file or folder to follow, or --listen ADDR (there is no runs/ folder here)"
    return None


def _started_text(args: argparse.Namespace, paths: List[str], stdin: bool) -> str:
    what = [clean(p) for p in paths] + (["standard input"] if stdin else [])
    text = "following " + (", ".join(what) if what else "nothing on disk")
    if args.listen:
        text += f"; listening at {clean(args.listen)}"
    if args.notify:
        text += f"; --notify on {args.notify_on or 'critical'} findings and run ends"
    return text + ("; stops when every run has ended" if args.until_done else "") + " (Ctrl+C stops)"


def _say(text: str) -> None:
    try:
        print(f"{PROG}: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _on_sigterm(stop: threading.Event):
    """SIGTERM (``timeout`` in CI, a scheduler) stops the loop cleanly:
    sources stopped, waiting notifications sent."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    except (ValueError, OSError):
        return None


def _follow(args, engine, ingest, tracker: EventTracker, notifier, stop: threading.Event, out: TextIO) -> int:
    store = ingest.store
    write = event_json if args.json else event_line
    problems_seen: Set[Tuple[str, str]] = set()
    last_version, last_update = -1, -float("inf")
    while not stop.is_set():
        now = time.monotonic()
        version = store.version
        due = (version != last_version and now - last_update >= UPDATE_EVERY) or now - last_update >= UPDATE_AT_LEAST
        if due:
            last_version, last_update = version, now
            try:
                _emit(tracker.update(engine.update)[1], write, notifier, out, args.silent_after)
            except (OSError, ValueError):  # standard output closed (a pipe's reader gone): nothing to tell
                raise
            except Exception as e:  # noqa: BLE001 - one bad update must not end the following
                _say(f"internal error in the diagnosis: {clean(repr(e))}; following on")
            _report_problems(ingest, problems_seen)
            if args.until_done and _all_ended(store, ingest):
                # what came with the last end
                _emit(tracker.update(engine.update)[1], write, notifier, out, args.silent_after)
                status = final_status(engine, store)
                _done(args, store, engine, status, out)
                return status
        stop.wait(POLL)
    return EXIT_TERMINATED


def _emit(events: List[Event], write, notifier, out: TextIO, silent_after: float) -> None:
    for e in events:
        out.write(write(e, silent_after) + "\n")
    if events:
        out.flush()
        if notifier is not None:
            notifier.offer(events)


def _report_problems(ingest, seen: Set[Tuple[str, str]]) -> None:
    problems, _ = ingest.recent_problems()
    for p in problems:
        key = (p.source, p.reason)
        if key not in seen:
            seen.add(key)
            _say(clean(str(p)))


def _all_ended(store, ingest) -> bool:
    """Every run has ended or stopped (and there is at least one), and
    nothing is left to read."""
    runs = list(store.runs.values())
    return bool(runs) and all(r.status in DONE for r in runs) and not ingest.catching_up


def final_status(engine, store) -> int:
    """0: every run finished, nothing at warning level or above; else 1."""
    from ..diagnose.report import exit_status

    failed = any(r.status != "finished" for r in store.runs.values())
    return 1 if failed or exit_status(engine) else 0


def _done(args, store, engine, status: int, out: TextIO) -> None:
    runs: dict = {}
    for r in list(store.runs.values()):
        runs[r.status] = runs.get(r.status, 0) + 1
    findings: dict = {}
    for f in engine.findings:
        findings[f.severity] = findings.get(f.severity, 0) + 1
    if args.json:
        text = json.dumps({"type": "done", "time": round(time.time(), 3), "status": status, "runs": runs,
                           "findings": findings})
    else:
        ran = ", ".join(f"{n} {s}" for s, n in sorted(runs.items()))
        standing = ", ".join(f"{n} {s}" for s, n in sorted(findings.items())) or "none"
        text = f"{_stamp(time.time())}  done      every run has ended ({ran}); findings standing: {standing}; " \
               f"exit status {status}"
    out.write(text + "\n")
    out.flush()


# -- one event, one line ------------------------------------------------------------


def _stamp(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def event_json(event: Event, silent_after: float = 30.0) -> str:
    """``event`` as one line of JSON (stream text kept, escaped for a terminal)."""
    return json_text(event.to_dict())


def event_line(event: Event, silent_after: float = 30.0) -> str:
    """``event`` as one line of text (stream text escaped)."""
    stamp = _stamp(event.time)
    if isinstance(event, FindingEvent):
        f = event.finding
        what = f"{f.kind}/{f.symptom}" if f.symptom else f.kind
        who = ", ".join(clean(n) for n in f.run_names[:3]) + (f" and {len(f.run_names) - 3} more"
                                                              if len(f.run_names) > 3 else "")
        text = f"{stamp}  {f.severity.upper():<8}  {event.change:<9}  {what}  {who}"
        if f.step is not None:
            text += f" from step {f.step}"
        if event.change != "retracted":
            text += f" (confidence {f.confidence:.2f}): {clean(f.explanation)}"
        return text
    return f"{stamp}  {'run':<8}  {event.change:<9}  {_run_text(event, silent_after)}"


def _run_text(event: RunEvent, silent_after: float) -> str:
    r = event.run
    name = clean(r.label)
    at = f" at step {r.step}" if r.step is not None else ""
    if event.change == "started":
        ranks = f", rank {r.rank} of {r.world_size}" if r.world_size > 1 else ""
        return f"{name} (id {clean(r.run_id)}{ranks}){' ' + r.status if r.status != 'running' else ''}"
    if event.change == "silent":
        return f"{name}: nothing heard for {silent_after:g} s{at}"
    if event.change == "resumed":
        return f"{name}: records again{at}"
    if event.change == "stopped":
        return f"{name} stopped{at}: no end record, and nothing heard for {STOPPED_AFTER / 3600:g} h"
    return f"{name} {r.status}{at}" + (f": {clean(r.error)}" if r.error else "")
