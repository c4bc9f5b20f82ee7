"""``--notify CMD``: which events page the user, and how the user's command
is run for them. No textual or rich import: ``diagnose --follow`` and
``watch`` share it.

Which (:class:`Notifier`):

* a finding when it first reaches the chosen severity (``--notify-on``:
  ``critical`` by default, or ``warning``), once per finding id for the life
  of the monitor: a finding that is retracted and raised again (flickers), or
  that changes, does not page twice;
* a run when it ends (finished, crashed, interrupted) or stops (no end
  record and nothing heard for a day: how a run on another host that was
  killed ends), once;
* nothing of the history read at start (events with ``live=False``): what was
  already there when the monitor started is on the screen, not news.

Bursts: a notification waits :data:`QUIET` seconds for more (at most
:data:`LONGEST` seconds after the first), and what came together goes out as
one, summarised (a 64-rank job going down is one notification, not 64). While
a command runs, what arrives meanwhile waits and goes out as one when it is
done: at most one command runs at a time.

How (:func:`run_command`): CMD is the user's own string, given to ``/bin/sh
-c`` exactly as typed; nothing from a stream is ever put into the command
line. The notification goes to its standard input as one JSON object and a
newline (:meth:`Notification.payload`), and a few plain fields go into its
environment (:meth:`Notification.environment`: ``TUI_MONITOR_EVENT``,
``_TITLE``, ``_MESSAGE``, ``_SEVERITY``, ``_KIND``, ``_SYMPTOM``, ``_RUN``,
``_RUN_ID``, ``_STEP``, ``_STATUS``, ``_COUNT``), with control characters
escaped. It runs on a thread of the notifier's own, never on the UI thread or
the follow loop, in a session of its own with its output kept (never on the
monitor's terminal); after ``timeout`` seconds its whole process group is
killed. A failure (an exit status other than 0, a timeout, a command that
cannot start) is reported once through ``on_failure``, and again only after a
success; the monitor goes on either way.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from .events import Event, FindingEvent, RunEvent
from .safe_text import clean, json_escapes

__all__ = ["Notifier", "Notification", "CommandResult", "run_command", "options_error", "from_args", "finish", "THRESHOLDS", "QUIET", "LONGEST",
           "DEFAULT_TIMEOUT", "MAX_EVENTS"]

#: ``--notify-on`` choices, in increasing urgency.
THRESHOLDS = ("warning", "critical")
_RANK = {"info": 0, "warning": 1, "critical": 2}
#: The run events that page: the run writes no more.
_RUN_ENDS = ("ended", "stopped")
#: Seconds a notification waits for more of the same burst, and at most after its first event.
QUIET = 2.0
LONGEST = 10.0
#: Seconds the command may run before its process group is killed.
DEFAULT_TIMEOUT = 30.0
#: Events listed in one notification's JSON (the rest are counted in ``omitted``),
#: and kept for one notification at most (the rest only counted).
MAX_EVENTS = 100
_MAX_HELD = 10_000
#: Longest text of one environment field, and of the title.
_ENV_CUT = 2000
_TITLE_CUT = 200
#: Output of the command kept to report a failure.
_OUTPUT_KEEP = 4096


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def _severity(f: Any) -> str:
    return str(getattr(f, "severity", "") or "")


def _what(f: Any) -> str:
    return f"{f.kind}/{f.symptom}" if getattr(f, "symptom", None) else str(f.kind)


def _who(f: Any) -> str:
    return clean(f.about)


def _at(step: Optional[int], word: str = "from") -> str:
    return f" {word} step {step}" if step is not None else ""


def event_title(event: Event) -> str:
    """One line naming ``event`` (stream text escaped)."""
    if isinstance(event, FindingEvent):
        f = event.finding
        return f"{_severity(f).upper()} {_who(f)}: {_what(f)}{_at(f.step)}"
    run = event.run
    return f"{clean(run.label)} {run.status}{_at(run.step, 'at')}"


def event_message(event: Event) -> str:
    """What ``event`` says in words (stream text escaped)."""
    if isinstance(event, FindingEvent):
        return clean(event.finding.explanation)
    run = event.run
    if run.error:
        return clean(run.error)
    return {"finished": "the run finished", "interrupted": "the run was interrupted",
            "stopped": "the run stopped: no end record, and nothing heard from it for a day"}.get(
        run.status, f"the run {run.status}")


def _plural(n: int, word: str, words: Optional[str] = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


@dataclass(frozen=True)
class Notification:
    """What one run of the command is told: one event, or a burst of them,
    most severe first (``dropped``: more that came with them, past what is
    held, only counted)."""

    events: Tuple[Event, ...]
    dropped: int = 0

    @property
    def count(self) -> int:
        return len(self.events) + self.dropped

    @property
    def omitted(self) -> int:
        """Events not listed in the JSON (past :data:`MAX_EVENTS`)."""
        return self.count - min(len(self.events), MAX_EVENTS)

    @property
    def kind(self) -> str:
        """``finding``, ``run_ended`` or ``burst``."""
        if self.count > 1:
            return "burst"
        return "finding" if isinstance(self.events[0], FindingEvent) else "run_ended"

    @property
    def findings(self) -> List[FindingEvent]:
        return [e for e in self.events if isinstance(e, FindingEvent)]

    @property
    def severity(self) -> Optional[str]:
        """The worst severity of the findings in it (None: only runs ended)."""
        sev = [_severity(e.finding) for e in self.findings]
        return max(sev, key=lambda s: _RANK.get(s, 0)) if sev else None

    @property
    def title(self) -> str:
        if self.count == 1:
            return _cut(event_title(self.events[0]), _TITLE_CUT)
        parts = []
        by_sev: Dict[str, int] = {}
        for e in self.findings:
            by_sev[_severity(e.finding)] = by_sev.get(_severity(e.finding), 0) + 1
        if by_sev:
            order = sorted(by_sev, key=lambda s: -_RANK.get(s, 0))
            counts = " and ".join(f"{by_sev[s]} {s}" for s in order)
            parts.append(f"{counts} finding{'s' * (sum(by_sev.values()) != 1)}")
        ends = [e for e in self.events if isinstance(e, RunEvent) and e.change in _RUN_ENDS]
        if ends:
            statuses = collections.Counter(e.run.status for e in ends)
            how = [f"{statuses[st]} {st}" for st in ("crashed", "stopped") if statuses[st]]
            parts.append(_plural(len(ends), "run") + " ended" + (f" ({', '.join(how)})" if how else ""))
        if self.dropped:
            parts.append(f"{self.dropped} more")
        return _cut(", ".join(parts) + " in " + self._runs_text(), _TITLE_CUT)

    def _runs_text(self) -> str:
        infos: Dict[Tuple[str, int], Tuple[str, str]] = {}
        for e in self.events:
            if isinstance(e, RunEvent):
                infos.setdefault(e.run.key, (e.run.run_id, e.run.name))
            else:
                for (rid, rank), name in zip(e.finding.runs[:1], e.finding.run_names[:1]):
                    infos.setdefault((rid, rank), (rid, str(name).split("[rank ")[0]))
        jobs: Dict[str, Tuple[str, int]] = {}
        for rid, name in infos.values():
            jobs[rid] = (name, jobs.get(rid, (name, 0))[1] + 1)
        named = [f"{clean(n)} ({k} ranks)" if k > 1 else clean(n) for n, k in jobs.values()]
        if len(named) > 2:
            return f"{named[0]}, {named[1]} and {len(named) - 2} more runs"
        return " and ".join(named) if named else "?"

    @property
    def message(self) -> str:
        if self.count == 1:
            return event_message(self.events[0])
        lines = [event_title(e) for e in self.events[:10]]
        rest = self.count - len(lines)
        if rest:
            lines.append(f"... and {rest} more")
        return "\n".join(lines)

    def payload(self) -> Dict[str, Any]:
        """The JSON object the command reads on standard input."""
        return {"type": "notification", "event": self.kind, "title": self.title, "message": self.message,
                "severity": self.severity, "count": self.count, "omitted": self.omitted,
                "events": [e.to_dict() for e in self.events[:MAX_EVENTS]]}

    def stdin(self) -> bytes:
        try:
            text = json.dumps(self.payload(), ensure_ascii=False, allow_nan=False, default=str)
        except ValueError:  # a non-finite float in evidence: the stream format's spelling is a string
            text = json.dumps(self.payload(), ensure_ascii=False, default=str)
        return (text.translate(json_escapes()) + "\n").encode("utf-8", "backslashreplace")

    def environment(self) -> Dict[str, str]:
        """The plain fields, from the first event (the most severe finding
        comes first in a burst), escaped and cut."""
        first = self.events[0]
        env = {"TUI_MONITOR_EVENT": self.kind, "TUI_MONITOR_TITLE": self.title, "TUI_MONITOR_MESSAGE": self.message,
               "TUI_MONITOR_SEVERITY": self.severity or "", "TUI_MONITOR_COUNT": str(self.count)}
        if isinstance(first, FindingEvent):
            f = first.finding
            rid = f.runs[0][0] if f.runs else ""
            env.update(TUI_MONITOR_KIND=str(f.kind), TUI_MONITOR_SYMPTOM=str(f.symptom or ""),
                       TUI_MONITOR_RUN=_who(f), TUI_MONITOR_RUN_ID=clean(rid),
                       TUI_MONITOR_STEP="" if f.step is None else str(f.step), TUI_MONITOR_STATUS="")
        else:
            run = first.run
            env.update(TUI_MONITOR_KIND="", TUI_MONITOR_SYMPTOM="", TUI_MONITOR_RUN=clean(run.label),
                       TUI_MONITOR_RUN_ID=clean(run.run_id), TUI_MONITOR_STEP="" if run.step is None else str(run.step),
                       TUI_MONITOR_STATUS=run.status)
        return {k: _cut(clean(v) if k != "TUI_MONITOR_MESSAGE" else v, _ENV_CUT) for k, v in env.items()}


def options_error(args: Any) -> Optional[str]:
    """What is wrong with ``--notify``, ``--notify-on`` and
    ``--notify-timeout`` on a command line (an argparse namespace), or None."""
    command, level, timeout = args.notify, args.notify_on, args.notify_timeout
    if command is not None and not command.strip():
        return "--notify needs a command, e.g. --notify 'notify-send \"$TUI_MONITOR_TITLE\"'"
    if command is None and (level or timeout is not None):
        return "--notify-on and --notify-timeout go with --notify CMD"
    if timeout is not None and not timeout > 0:
        return "--notify-timeout must be more than 0 seconds"
    return None


def from_args(args: Any, on_failure: Callable[[str], None]) -> "Optional[Notifier]":
    """The notifier a command line asks for (checked by :func:`options_error`), or None."""
    if not args.notify:
        return None
    return Notifier(args.notify, threshold=args.notify_on or "critical",
                    timeout=DEFAULT_TIMEOUT if args.notify_timeout is None else args.notify_timeout,
                    on_failure=on_failure)


def finish(notifier: "Notifier", say: Callable[[str], None]) -> None:
    """Send what waits, wait for the command (Ctrl+C leaves it) and say how
    many notifications failed, through ``say``."""
    if notifier.busy:
        say("sending the last notifications (Ctrl+C leaves them)")
    try:
        notifier.close()
    except KeyboardInterrupt:
        pass
    if notifier.failures:
        say(f"{_plural(notifier.failures, 'notification')} failed; the last: the command {notifier.last_failure}")


class CommandResult(NamedTuple):
    ok: bool
    status: Optional[int]  # the exit status; None when it did not start or was killed
    timed_out: bool
    output: str  # the start of what it printed (standard output and error together)

    def why(self) -> str:
        """The failure in words."""
        first = next((line.strip() for line in self.output.splitlines() if line.strip()), "")
        if self.timed_out:
            what = "did not finish in time and was killed"
        elif self.status is None:
            what = "could not start"
        elif self.status < 0:
            what = f"was killed by signal {-self.status}"
        else:
            what = f"exited with status {self.status}"
        return what + (f": {clean(_cut(first, 300))}" if first else "")


def run_command(command: str, stdin: bytes, env: Dict[str, str], timeout: float) -> CommandResult:
    """Run ``command`` through ``/bin/sh -c`` with ``stdin`` and the
    environment plus ``env``; kill its process group after ``timeout`` s."""
    full_env = dict(os.environ)
    full_env.update(env)
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE, stdout=out,
                                    stderr=subprocess.STDOUT, env=full_env, start_new_session=True,
                                    close_fds=True)
        except OSError as e:
            return CommandResult(False, None, False, str(e))
        timed_out = False
        try:
            proc.communicate(stdin, timeout=timeout)  # a command that does not read stdin is fine
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
        except BaseException:
            _kill_group(proc)
            raise
        out.seek(0)
        output = out.read(_OUTPUT_KEEP).decode("utf-8", "replace")
    status = proc.returncode
    return CommandResult(status == 0 and not timed_out, None if timed_out else status, timed_out, output)


def _kill_group(proc: subprocess.Popen) -> None:
    """TERM the command's whole process group, KILL it a second later."""
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(wait)
            if sig == signal.SIGTERM:
                try:  # what it left behind in its group
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class _Pending:
    events: List[Event] = field(default_factory=list)
    dropped: int = 0
    first: float = 0.0
    last: float = 0.0


class Notifier:
    """Decides which events page, gathers bursts and runs ``command`` for
    them on its own thread (see the module's text). ``threshold``:
    ``warning`` or ``critical``. ``on_failure(text)``: told of a failing
    command (once, until it works again). ``quiet``, ``longest``: the burst
    window, in seconds."""

    def __init__(self, command: str, *, threshold: str = "critical", timeout: float = DEFAULT_TIMEOUT,
                 quiet: float = QUIET, longest: float = LONGEST,
                 on_failure: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if threshold not in THRESHOLDS:
            raise ValueError(f"--notify-on must be one of {', '.join(THRESHOLDS)}, not {threshold!r}")
        self.command = command
        self.threshold = threshold
        self.timeout = timeout
        self.quiet = quiet
        self.longest = longest
        self.on_failure = on_failure
        self.clock = clock
        self.sent = 0  # notifications whose command ran and succeeded
        self.failures = 0  # notifications whose command failed
        self.last_failure: Optional[str] = None
        self._failing = False
        self._paged: set = set()  # finding ids and run keys already notified
        self._pending = _Pending()
        self._closing = False
        self._running = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="tui-monitor-notify", daemon=True)
        self._thread.start()

    # -- what the monitor calls --------------------------------------------------

    def wants(self, event: Event) -> bool:
        """Whether ``event`` pages (before de-duplication)."""
        if not event.live:
            return False
        if isinstance(event, FindingEvent):
            return event.change in ("raised", "changed") and \
                _RANK.get(_severity(event.finding), 0) >= _RANK[self.threshold]
        return event.change in _RUN_ENDS

    def offer(self, events: Sequence[Event]) -> int:
        """Take the events that page (and were not paged for yet); returns how many."""
        chosen = []
        for e in events:
            if not self.wants(e):
                continue
            key = ("finding", e.id) if isinstance(e, FindingEvent) else ("run", e.run.key)
            if key in self._paged:
                continue
            self._paged.add(key)
            chosen.append(e)
        if not chosen:
            return 0
        now = self.clock()
        with self._cond:
            p = self._pending
            if not p.events:
                p.first = now
            p.last = now
            room = max(_MAX_HELD - len(p.events), 0)
            p.events.extend(chosen[:room])
            p.dropped += len(chosen) - len(chosen[:room])
            self._cond.notify_all()
        return len(chosen)

    def close(self, timeout: Optional[float] = None) -> bool:
        """Send what waits now (no burst window) and wait for the command,
        at most ``timeout`` s (default: the command's own timeout and a
        little). True when all was sent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(self.timeout + 10.0 if timeout is None else timeout)
        return not self._thread.is_alive()

    @property
    def busy(self) -> bool:
        """True while something waits or a command runs."""
        with self._cond:
            return bool(self._pending.events or self._running)

    # -- the thread ----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    p = self._pending
                    if not p.events:
                        if self._closing:
                            return
                        self._cond.wait()
                        continue
                    if self._closing:
                        break
                    due = min(p.last + self.quiet, p.first + self.longest)
                    now = self.clock()
                    if now >= due:
                        break
                    self._cond.wait(due - now)
                batch, self._pending = p, _Pending()
                self._running = True
            try:
                self._send(Notification(tuple(_ordered(batch.events)), batch.dropped))
            except Exception as e:  # noqa: BLE001 - the notifier must outlive any surprise
                self._failed(f"internal error: {e!r}")
            finally:
                with self._cond:
                    self._running = False

    def _send(self, note: Notification) -> None:
        result = run_command(self.command, note.stdin(), note.environment(), self.timeout)
        if result.ok:
            self.sent += 1
            self._failing = False
            return
        self._failed(result.why())

    def _failed(self, why: str) -> None:
        self.failures += 1
        self.last_failure = why
        if self._failing:
            return  # said once; said again only after it worked
        self._failing = True
        if self.on_failure is not None:
            try:
                self.on_failure(f"the --notify command {why}")
            except Exception:  # noqa: BLE001
                pass


def _ordered(events: List[Event]) -> List[Event]:
    """Most severe findings first, then the runs ended, each in arrival order (the sort is stable)."""
    return sorted(events, key=lambda e: -_RANK.get(_severity(e.finding), 0) if isinstance(e, FindingEvent) else 1)
