"""What the monitor says while it has no run to show: which paths it
follows (and which do not exist), where it listens and the line to give the
job. Pure: the facts are gathered off the UI thread (:func:`sources_state`
stats the paths) and rendered here."""
from __future__ import annotations

import os
from typing import Any, List, NamedTuple, Tuple

from rich.text import Text

from ._text import TEXT_MAX, safe

__all__ = ["SourcesState", "sources_state", "waiting_text"]


class SourcesState(NamedTuple):
    followed: Tuple[str, ...] = ()  # paths that exist
    missing: Tuple[str, ...] = ()  # paths that do not (yet)
    listening: Tuple[str, ...] = ()  # addresses a listener is bound to
    tokens: bool = False  # whether a listener asks for a token


def _address(listener: Any) -> str:
    try:
        bound = listener.bound
        bound = bound() if callable(bound) else bound
    except Exception:  # noqa: BLE001 - not bound (yet): the address asked for
        bound = None
    if isinstance(bound, tuple) and len(bound) >= 2:
        return "%s:%s" % (bound[0], bound[1])
    if isinstance(bound, str) and bound:
        return "unix:" + bound
    return str(getattr(listener, "address", "?"))


def sources_state(ingest: Any) -> SourcesState:
    """What ``ingest`` follows and listens on. Does I/O (a stat per path):
    call it from a thread."""
    if ingest is None:
        return SourcesState()
    roots: List[str] = []
    for follower in list(getattr(ingest, "followers", ())):
        roots.extend(getattr(follower, "roots", ()))
    missing = tuple(r for r in roots if not os.path.exists(r))
    followed = tuple(r for r in roots if r not in missing)
    listeners = list(getattr(ingest, "listeners", ()))
    return SourcesState(followed, missing, tuple(_address(lst) for lst in listeners),
                        any(getattr(lst, "token", None) for lst in listeners))


def waiting_text(state: SourcesState) -> Text:
    """The empty screen's words: what is missing, what is awaited, how a job
    connects (each line of code on its own line, as it is typed)."""
    t = Text(no_wrap=False, end="")
    t.append("No runs yet.\n\n", "bold")
    for path in state.missing:
        t.append("✗ ", "bold #ef5350")
        t.append(safe(path, word=TEXT_MAX), "bold")
        t.append(" does not exist. ", "#ef5350")
        t.append("Check the path (quit with q); runs that appear there later are picked up.\n")
    for path in state.followed:
        t.append("… ", "#fff176")
        t.append("waiting for the first run in ")
        t.append(safe(path, word=TEXT_MAX), "bold")
        t.append(" (*.jsonl streams, TensorBoard event files, CSV and text logs).\n")
    for address in state.listening:
        shown = safe(address, word=TEXT_MAX)
        t.append("◉ ", "#81c784")
        t.append("listening on ")
        t.append(shown, "bold")
        t.append(". Start the job with:\n\n    ")
        t.append("TUI_MONITOR_TO=%s" % shown, "bold #4fc3f7")
        if state.tokens:
            t.append(" TUI_MONITOR_TOKEN=…", "bold #4fc3f7")
        t.append(" python train.py\n\n")
        t.append("  or in the script: ", "dim")
        t.append('tui_monitor.init(name=..., to="%s")\n' % shown)
        port = address.rpartition(":")[2] if not address.startswith("unix:") else ""
        if port.isdigit():
            t.append("  a job on another machine: run ", "dim")
            t.append("ssh -R %s:127.0.0.1:%s THAT_HOST" % (port, port))
            t.append(" from here first\n", "dim")
    if not (state.missing or state.followed or state.listening):
        t.append("Nothing to follow: give watch a folder or file, or --listen ADDR.\n")
    paths = state.missing + state.followed
    if paths or not state.listening:  # a listener's own line is above
        folder = next((p for p in paths if not p.endswith((".jsonl", ".csv", ".log", ".txt"))), "runs")
        t.append("\nIn the training script:\n", "dim")
        t.append('    run = tui_monitor.init(name=..., dir="%s")\n' % safe(folder, word=TEXT_MAX).replace('"', '\\"'))
        t.append('    run.log({"loss": loss}, step=step)\n')
    t.append("\n? lists the keys; p shows the lines that could not be read.", "dim")
    return t
