"""Alerts in the TUI: what the monitor does when something new and bad
arrives while you may not be looking.

* On a new critical finding: the terminal bell, and the terminal's own
  desktop notification where it has one (OSC 9: iTerm2, kitty, WezTerm,
  Ghostty; OSC 777: foot, rxvt-unicode, VTE terminals such as Ptyxis,
  WezTerm, Ghostty; inside tmux wrapped for its ``allow-passthrough``). One
  per finding id (one that flickers does not ring twice), one per diagnosis
  (a 64-rank job going down rings once). ``n`` or ``watch --no-bell`` turns
  both off.
* The header counts the findings that arrived since you last looked: since
  your last key or click in the monitor, or since the terminal got the focus
  back.
* ``watch --notify CMD``: the same events go to the notifier
  (:mod:`tui_monitor.notify`).

The events come from the engine made by :meth:`Alerts.engine`
(:func:`tui_monitor.events.observed`): computed in the diagnosis worker,
with what was there at start marked as history (it rings nothing). The
worker hands them over with :meth:`Alerts.on_events`; the UI thread takes
them when it applies the diagnosis (:meth:`Alerts.take`). Nothing here does
I/O on the UI thread but writing a few bytes to the terminal.
"""
from __future__ import annotations

import datetime
import os
import threading
from typing import Any, Callable, List, Mapping, NamedTuple, Optional

from rich.text import Text

from ..events import Event, FindingEvent, observed
from ..notify import Notification

__all__ = ["Alerts", "Arrivals", "desktop_escape", "escape_kind"]

#: The environment variable that chooses the desktop escape: ``9``, ``777`` or ``none``.
ESCAPE_ENV = "TUI_MONITOR_DESKTOP_ESCAPE"
_TITLE = "tui-monitor"
_CUT = 180


class Arrivals(NamedTuple):
    """What one diagnosis brought, for the UI thread."""

    new: int  # findings never seen before (info left out)
    critical: List[FindingEvent]  # of them, the critical ones never rung for


def escape_kind(env: Mapping[str, str]) -> Optional[str]:
    """Which desktop-notification escape the terminal understands: ``"9"``,
    ``"777"`` or None (the bell alone). ``TUI_MONITOR_DESKTOP_ESCAPE``
    decides when set; else the terminal is told by the variables it sets
    (inside tmux too: the server keeps the first client's)."""
    chosen = env.get(ESCAPE_ENV, "").strip().lower()
    if chosen in ("9", "777"):
        return chosen
    if chosen in ("none", "off", "0", "no"):
        return None
    term = env.get("TERM", "")
    program = env.get("TERM_PROGRAM", "")
    if program in ("iTerm.app", "ghostty", "WezTerm") or env.get("ITERM_SESSION_ID") or env.get("KITTY_WINDOW_ID") \
            or env.get("GHOSTTY_RESOURCES_DIR") or env.get("WEZTERM_PANE") or term == "xterm-kitty":
        return "9"
    if term.startswith(("foot", "rxvt-unicode")) or env.get("VTE_VERSION"):
        return "777"
    return None


def _field(text: str) -> str:
    """Text for an OSC field: no control character (it would end or break
    the sequence; stream text is already escaped), no ``;`` (OSC 777's
    separator), cut short."""
    text = "".join(c if c >= " " and c != "\x7f" else " " for c in text).replace(";", ",")
    return text if len(text) <= _CUT else text[:_CUT - 1] + "…"


def desktop_escape(kind: Optional[str], title: str, body: str, in_tmux: bool = False) -> str:
    """The escape sequence that asks the terminal for a desktop
    notification (empty for ``kind`` None); wrapped for tmux's passthrough
    when ``in_tmux``."""
    if kind == "9":
        seq = "\x1b]9;%s: %s\x07" % (_field(title), _field(body))
    elif kind == "777":
        seq = "\x1b]777;notify;%s;%s\x07" % (_field(title), _field(body))
    else:
        return ""
    if in_tmux:  # DCS tmux; <the sequence, each ESC doubled> ST
        seq = "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq


class Alerts:
    """The bell, the desktop escape, the count of what arrived since you
    last looked, and the hand-over to ``--notify``'s notifier.

    ``enabled``: the bell and the desktop escape (``n`` toggles). ``write``:
    how bytes reach the terminal (the app's driver), and ``bell``: how it
    rings; either may be missing (headless). ``env``: where the terminal is
    told (the process environment by default). ``clock``: what "since" shows."""

    def __init__(self, enabled: bool = True, notifier: Any = None,
                 env: Optional[Mapping[str, str]] = None,
                 clock: Callable[[], float] = lambda: datetime.datetime.now().timestamp()) -> None:
        env = os.environ if env is None else env
        self.enabled = enabled
        self.notifier = notifier
        self.escape = escape_kind(env)
        self.in_tmux = bool(env.get("TMUX"))
        self.clock = clock
        self.unseen = 0
        self.looked_at = clock()
        self.rung = 0  # times the bell rang (for tests; the terminal's bell is not observable headless)
        self._counted: set = set()
        self._rung_ids: set = set()
        self._pending: List[FindingEvent] = []
        self._failed: List[str] = []
        self._lock = threading.Lock()
        if notifier is not None:  # its failures are shown by the app (and still told to whoever was told)
            told = notifier.on_failure

            def failed(text: str) -> None:
                if told is not None:
                    told(text)
                with self._lock:
                    self._failed.append(text)
            notifier.on_failure = failed

    # -- the engine and its worker thread -------------------------------------------

    def engine(self, store: Any, ingest: Any, **engine_args: Any) -> Any:
        """The diagnosis engine whose events come here (``ingest``: what
        fills ``store``, to tell its history; None: what ``store`` holds now is)."""
        from ..diagnose import Diagnoser

        return observed(Diagnoser, store, self.on_events, ingest=ingest, **engine_args)

    def on_events(self, events: List[Event]) -> None:
        """From the diagnosis worker: hand the events to the notifier and
        keep the live findings for the UI thread."""
        if self.notifier is not None:
            self.notifier.offer(events)
        found = [e for e in events if isinstance(e, FindingEvent) and e.live and e.change in ("raised", "changed")]
        if found:
            with self._lock:
                self._pending.extend(found)

    # -- the UI thread --------------------------------------------------------------------

    def take(self) -> Arrivals:
        """What arrived since the last call: counted, and the new critical
        findings to ring for (each id once)."""
        with self._lock:
            found, self._pending = self._pending, []
        new = 0
        critical: List[FindingEvent] = []
        for e in found:
            if e.severity != "info" and e.id not in self._counted:
                self._counted.add(e.id)
                new += 1
            if e.severity == "critical" and e.id not in self._rung_ids:
                self._rung_ids.add(e.id)
                critical.append(e)
        self.unseen += new
        return Arrivals(new, critical)

    def ring(self, critical: List[FindingEvent], bell: Optional[Callable[[], None]],
             write: Optional[Callable[[str], None]]) -> bool:
        """Ring once for these new critical findings, with the desktop
        escape where the terminal has one; False when alerts are off or
        there is nothing to ring for."""
        if not critical or not self.enabled:
            return False
        self.rung += 1
        if bell is not None:
            bell()
        note = Notification(tuple(critical))
        sequence = desktop_escape(self.escape, _TITLE, note.title, self.in_tmux)
        if sequence and write is not None:
            write(sequence)
        return True

    def failures(self) -> List[str]:
        """``--notify``'s failures reported since the last call (each said once)."""
        if not self._failed:
            return []
        with self._lock:
            out, self._failed = self._failed, []
        return out

    def looked(self) -> None:
        """The user is looking: a key, a click, the terminal's focus back."""
        self.unseen = 0
        self.looked_at = self.clock()

    def toggle(self) -> bool:
        self.enabled = not self.enabled
        return self.enabled

    def badge(self) -> Text:
        """The header's part: how many findings arrived since you last
        looked (and since when), and whether alerts are off."""
        out = Text(no_wrap=True, end="")
        if self.unseen:
            since = datetime.datetime.fromtimestamp(self.looked_at).strftime("%H:%M")
            out.append(" %d new finding%s since %s " % (self.unseen, "s" * (self.unseen != 1), since),
                       "bold white on #c62828")
        if not self.enabled:
            out.append("  alerts off" if self.unseen else "alerts off", "dim")
        return out
