"""What only a multi-rank view shows: stragglers, hangs, ranks that disagree
or crash (findings of kind ``distributed``).

A *job* is the runs that share a ``run_id`` with ``world_size > 1`` (the hook
gives every rank of a torchrun/SLURM/MPI job the same run id). Per job, at
every :meth:`RankDetector.update`:

* **straggler**: a rank persistently slower than the others. In synchronous
  data parallelism (DDP, FSDP) every rank waits for the slowest at each
  collective, so the spacing of the ranks' ``log()`` calls is the same on all
  of them; a straggler shows in what a rank measures for itself (a timing it
  logs: ``data_time``, ``compute_time``, ``batch_time``...), in how late its
  log of a step comes when the log precedes the collective (*lag*), or, when
  ranks are not in lockstep, in its own pace (seconds per step). Each is the
  median over the rank's last ``straggler_window`` points, compared with the
  median of the other ranks; raised at ``straggler_ratio`` and a cost of at
  least ``straggler_min_cost`` of the job's step time, kept down to
  ``straggler_keep`` (hysteresis).
* **hung rank / job hung**: a rank whose step has not moved for
  ``max(hang_min, hang_factor x the job's step time)``, with or without
  heartbeats. All active ranks stopped: the job is hung (the classic
  collective hang: processes alive, heartbeats with a step that does not
  move); the ranks that stopped first (lowest step, earliest last log, or the
  ones that went quiet) are named first. Some stopped while others step: a
  hung rank. Time comes from an injectable clock and the stream's own
  record times (see :func:`stalled_for`), so a batch read of finished files
  and a live view agree.
* **rank divergence**: a rank with a non-finite loss or gradient norm while
  the others are finite at the same steps; or, with at least three ranks, a
  rank whose recent median loss or gradient norm is ``divergence_ratio``
  times off the median rank and far outside the others' spread.
* **rank crashed**: a rank that ended crashed (its end record with an error,
  or its process gone) or went quiet for good, while the others go on or
  went down after it: the first to go is named, with its error.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..store.run import UNENDED
from .findings import Finding, make_finding, run_label
from .settings import Settings
from .tracks import pick_loss

__all__ = ["RankDetector", "jobs_of", "stalled_for", "rank_pace", "TIMING_EXCLUDE"]

RunKey = Tuple[str, int]

#: Metric names containing ``time`` that are not per-step durations.
TIMING_EXCLUDE = ("stamp", "wall", "elapsed", "total", "eta", "epoch", "since", "start", "end", "remaining")


def jobs_of(runs: Sequence[Any]) -> Dict[str, List[Any]]:
    """run_id -> its ranks (by rank) for runs with ``world_size > 1``."""
    out: Dict[str, List[Any]] = {}
    for run in runs:
        if (getattr(run, "world_size", 1) or 1) > 1:
            out.setdefault(run.run_id, []).append(run)
    for v in out.values():
        v.sort(key=lambda r: r.rank)
    return out


def host_of(run) -> str:
    return str(run.host) if getattr(run, "host", None) else "?"


def who(run) -> str:
    """``rank 2 (host gpu07)``."""
    return f"rank {run.rank} (host {host_of(run)})"


def ranks_text(runs: Sequence[Any]) -> str:
    rs = sorted(r.rank for r in runs)
    if not rs:
        return "none"
    return ("rank " if len(rs) == 1 else "ranks ") + ", ".join(str(r) for r in rs)


def clock_series(run):
    """The series whose points time a rank's steps: its train loss, else its
    train metric with the most points; None when it logs none."""
    name = pick_loss(run, "train")
    s = run.get(name, "train") if name else None
    if s is not None and len(s):
        return s
    best = None
    for (split, _), ser in list(run.series.items()):
        if split == "train" and len(ser) and (best is None or len(ser) > len(best)):
            best = ser
    return best


def rank_pace(run, window: int) -> Optional[float]:
    """Seconds per step over the last ``window`` logged points (the median of
    the per-step spacing), from the train metrics, else from the hook's
    ``("system", "step_time")`` samples."""
    s = clock_series(run)
    if s is not None and len(s) >= 3:
        snap = s.snapshot()
        st = np.asarray(snap.steps[-(window + 1):], dtype=np.float64)
        tm = np.asarray(snap.times[-(window + 1):], dtype=np.float64)
        ds, dt = np.diff(st), np.diff(tm)
        ok = (ds > 0) & np.isfinite(dt) & (dt >= 0)
        if ok.sum() >= 2:
            return float(np.median(dt[ok] / ds[ok]))
    sys_s = run.series.get(("system", "step_time"))
    if sys_s is not None and len(sys_s):
        v = np.asarray(sys_s.snapshot().values[-max(3, window // 10):], dtype=np.float64)
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            return float(np.median(v))
    return None


def stalled_for(run, now: float) -> float:
    """Seconds since ``run`` last logged a step, at ``now`` (the monitor's
    clock). Record times are the training host's clock and arrivals the
    monitor's, so the span is measured in two parts that each use one clock:
    the records' own span since the last log (heartbeats after it), plus the
    time since the last record arrived. A batch read of a file sees only the
    first part; a live view both."""
    last_log = run.last_log if run.last_log is not None else run.start
    if last_log is None:
        return 0.0
    span = (run.last_seen - last_log) if run.last_seen is not None else 0.0
    quiet = (now - run.last_arrival) if run.last_arrival is not None else 0.0
    return max(0.0, span) + max(0.0, quiet)


def _median(xs: Sequence[float]) -> Optional[float]:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.median(xs)) if xs else None


def _fmt_s(x: Optional[float]) -> str:
    if x is None or not math.isfinite(x):
        return "?"
    if x >= 120:
        return f"{x / 60:.1f} min"
    if x >= 1:
        return f"{x:.1f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.0f} ms" if x >= 0.01 else f"{x * 1e3:.1f} ms"
    return f"{x * 1e6:.0f} us"


#: Errors a rank dies of when another rank went away first (gloo, NCCL, the store).
PEER_LOSS = ("connection closed", "connection reset", "broken pipe", "by peer", "timed out", "timeout",
             "communicator was aborted", "watchdog", "socket closed", "recv", "no route to host")


def lost_peer(run) -> bool:
    """Whether ``run`` ended on an error that says a peer went away (the
    consequence of another rank's crash, not a cause)."""
    end = run.end or {}
    err = end.get("error") if isinstance(end.get("error"), dict) else {}
    text = f"{err.get('type', '')} {err.get('message', '')}".lower()
    return "distbackenderror" in text or "distnetworkerror" in text or any(w in text for w in PEER_LOSS)


class _RankTrack:
    """Per rank: a cursor over the loss and gradient norm, the recent finite
    values, and the first non-finite value met."""

    def __init__(self) -> None:
        self.version = -1
        self.cursors: Dict[str, int] = {}
        self.recent: Dict[str, np.ndarray] = {}
        self.first_bad: Dict[str, Tuple[int, float]] = {}
        self.last_finite_step: Dict[str, int] = {}
        self.last_step: Dict[str, int] = {}

    def feed(self, name: str, series, keep: int) -> None:
        if series is None:
            return
        snap = series.snapshot()
        n = len(snap.values)
        c = self.cursors.get(name, 0)
        if n <= c:
            return
        self.cursors[name] = n
        v = np.asarray(snap.values[c:n], dtype=np.float64)
        st = np.asarray(snap.steps[c:n])
        bad = ~np.isfinite(v)
        if bad.any() and name not in self.first_bad:
            i = int(np.argmax(bad))
            self.first_bad[name] = (int(st[i]), float(v[i]))
        good = v[~bad]
        if good.size:
            self.last_finite_step[name] = int(st[~bad][-1])
            old = self.recent.get(name)
            self.recent[name] = (good if old is None else np.concatenate([old, good]))[-keep:]
        self.last_step[name] = int(st[-1])


def _timing_names(run) -> List[str]:
    out = []
    for split, m in list(run.series):
        if split != "train":
            continue
        low = m.lower()
        if "time" in low and not any(x in low for x in TIMING_EXCLUDE):
            out.append(m)
    return out


class RankDetector:
    """Keeps per-job state between updates; :meth:`update` returns the
    current ``distributed`` findings of every job."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.tracks: Dict[RunKey, _RankTrack] = {}
        self.active: set = set()  # (symptom, run key) of the findings up now (for hysteresis)
        self._data_cache: Dict[str, Tuple[Tuple[int, ...], List[Finding]]] = {}
        self.paces: Dict[RunKey, Optional[float]] = {}

    # -- the update ----------------------------------------------------------

    def update(self, runs: Sequence[Any], now: Optional[float] = None) -> List[Finding]:
        now = self.clock() if now is None else now
        out: Dict[str, Finding] = {}
        for run_id, ranks in jobs_of(runs).items():
            if len(ranks) < 2:
                continue
            try:
                found = self._job(run_id, ranks, now)
            except Exception:  # noqa: BLE001 - odd data must never stop the engine
                continue
            for f in found:
                out.setdefault(f.id, f)
        self.active = {(f.symptom, f.runs[0]) for f in out.values()}
        return list(out.values())

    def _job(self, run_id: str, ranks: List[Any], now: float) -> List[Finding]:
        s = self.settings
        sig = tuple(r.version for r in ranks)
        cached = self._data_cache.get(run_id)
        if cached is None or cached[0] != sig:
            for r in ranks:
                self.paces[r.key] = rank_pace(r, s.straggler_window)
                self._feed(r)
            data = self._stragglers(ranks) + self._divergence(ranks)
            self._data_cache[run_id] = (sig, data)
        else:
            data = cached[1]
        crashed = self._crashed(ranks, now)
        hung = self._hung(ranks, now, crashed)
        return crashed + hung + data

    def _feed(self, run) -> None:
        tr = self.tracks.get(run.key)
        if tr is None:
            tr = self.tracks[run.key] = _RankTrack()
        if tr.version == run.version:
            return
        tr.version = run.version
        keep = self.settings.straggler_window
        name = pick_loss(run, "train")
        if name:
            tr.feed("loss", run.get(name, "train"), keep)
        gn = None
        for m in ("grad_norm", "grad_norm_total", "gradient_norm", "grad/norm", "grad_norm/total", "total_norm"):
            gn = run.get(m, "train")
            if gn is not None:
                break
        if gn is None and len(run.grad_norm):
            gn = run.grad_norm
        tr.feed("grad_norm", gn, keep)

    def job_pace(self, ranks: Sequence[Any]) -> Optional[float]:
        """The job's step time: the median of its ranks' paces."""
        return _median([self.paces.get(r.key) for r in ranks])

    # -- straggler ---------------------------------------------------------------

    def _measures(self, ranks: List[Any]) -> Dict[str, Dict[RunKey, float]]:
        """measure name -> rank -> seconds per step (median over the window)."""
        s = self.settings
        w = s.straggler_window
        out: Dict[str, Dict[RunKey, float]] = {}
        # timings each rank logs for itself
        names = None
        for r in ranks:
            ns = set(_timing_names(r))
            names = ns if names is None else names & ns
        for m in sorted(names or ()):
            vals = {}
            for r in ranks:
                ser = r.get(m, "train")
                v = np.asarray(ser.snapshot().values[-w:], dtype=np.float64) if ser is not None else np.empty(0)
                v = v[np.isfinite(v) & (v >= 0)]
                if v.size >= s.straggler_min_points:
                    vals[r.key] = float(np.median(v))
            out[m] = vals
        # pace
        out["step time"] = {r.key: p for r in ranks if (p := self.paces.get(r.key)) is not None}
        # lag: how late each rank logs a step compared with the median rank; only
        # meaningful in lockstep (ranks at one pace: else the lag just grows)
        paces = [p for p in out["step time"].values() if p > 0]
        if len(paces) < len(ranks) or max(paces) > s.straggler_keep * min(paces):
            return out
        clocks = {}
        for r in ranks:
            ser = clock_series(r)
            if ser is None or len(ser) < s.straggler_min_points:
                continue
            snap = ser.snapshot()
            clocks[r.key] = dict(zip(np.asarray(snap.steps[-w:]).tolist(), np.asarray(snap.times[-w:]).tolist()))
        if len(clocks) == len(ranks):
            common = set.intersection(*(set(c) for c in clocks.values()))
            if len(common) >= s.straggler_min_points:
                steps = sorted(common)[-w:]
                mat = np.array([[clocks[r.key][st] for st in steps] for r in ranks], dtype=np.float64)
                rel = mat - np.median(mat, axis=0)
                out["lag"] = {r.key: float(np.median(rel[i])) for i, r in enumerate(ranks)}
        return out

    def _stragglers(self, ranks: List[Any]) -> List[Finding]:
        s = self.settings
        pace = self.job_pace(ranks)
        measures = self._measures(ranks)
        best: Dict[RunKey, Tuple[float, str, float, float]] = {}  # key -> (cost, measure, value, others)
        for m, vals in measures.items():
            if len(vals) < 2 or len(vals) < len(ranks):
                continue
            for r in ranks:
                mine = vals[r.key]
                others = _median([v for k, v in vals.items() if k != r.key])
                if others is None:
                    continue
                keep = ("straggler", r.key) in self.active
                if m == "lag":
                    extra = mine - others
                    ratio = math.inf if extra > 0 else 0.0
                    if pace:
                        ratio = 1.0 + extra / pace  # the lag in step times
                    need = s.straggler_keep if keep else s.straggler_ratio
                else:
                    extra = mine - others
                    ratio = mine / others if others > 0 else (math.inf if mine > 0 else 1.0)
                    need = s.straggler_keep if keep else s.straggler_ratio
                floor = s.straggler_min_cost * (pace if pace else 0.0)
                floor = max(floor, s.straggler_min_seconds) * (0.5 if keep else 1.0)
                if ratio >= need and extra >= floor:
                    cost = extra
                    if r.key not in best or cost > best[r.key][0]:
                        best[r.key] = (cost, m, mine, others)
        out = []
        n = len(ranks)
        for r in ranks:
            if r.key not in best:
                continue
            extra, m, mine, others = best[r.key]
            rest = [x for x in ranks if x is not r]
            share = (extra / pace) if pace else None
            if m == "lag":
                what = (f"it logs each step {_fmt_s(extra)} after the median rank (over the last "
                        f"{s.straggler_window} common steps)")
            elif m == "step time":
                what = f"its step time is {_fmt_s(mine)} against a median {_fmt_s(others)} on the other {n - 1} ranks"
            else:
                what = f"its {m} is {_fmt_s(mine)} per step against a median {_fmt_s(others)} on the other {n - 1} ranks"
            slower = f"{mine / others:.1f}x" if m != "lag" and others > 0 else f"+{_fmt_s(extra)}"
            expl = (f"{who(r)} is a straggler: {what} ({slower}, +{_fmt_s(extra)} a step)")
            if share is not None and m != "step time":
                expl += (f"; every collective waits for it, so it costs the whole job about {100 * min(share, 9.99):.0f}% "
                         f"of its {_fmt_s(pace)} step time")
            ev = {"rank": r.rank, "host": host_of(r), "measure": m, "value": mine, "others_median": others,
                  "extra_per_step": extra, "job_step_time": pace, "ranks": n}
            ser = clock_series(r)
            step = None
            if ser is not None and len(ser):
                snap = ser.snapshot()
                step = int(snap.steps[-min(len(snap.steps), s.straggler_window)])
            conf = 0.6 + min(0.3, 0.1 * math.log2(max(1.0, (mine / others) if (m != "lag" and others > 0) else 1 + (share or 0))))
            out.append(make_finding("distributed", "straggler", [r, *rest], step, "warning", conf, ev, expl,
                                    seen_at_step=r.last_step))
        return out

    # -- hang ------------------------------------------------------------------

    def hang_after(self, ranks: Sequence[Any]) -> float:
        s = self.settings
        pace = self.job_pace(ranks)
        return max(s.hang_min, s.hang_factor * pace) if pace else s.hang_min

    def _hung(self, ranks: List[Any], now: float, crashed: List[Finding]) -> List[Finding]:
        s = self.settings
        active = [r for r in ranks if r.status in UNENDED]
        if not active:
            return []
        limit = self.hang_after(ranks)
        pace = self.job_pace(ranks)
        stall = {r.key: stalled_for(r, now) for r in active}
        alive = {r.key: (now - r.last_arrival) < limit if r.last_arrival is not None else False for r in active}
        stopped = [r for r in active if stall[r.key] >= limit]
        if not stopped:
            return []
        moving = [r for r in active if stall[r.key] < limit / 2]

        def hb(r) -> str:
            return "heartbeats coming, step not moving" if alive[r.key] else "nothing at all (no heartbeats)"

        if moving:
            # some ranks stopped while others still step
            out = []
            for r in stopped:
                st = r.last_step
                ahead = max((m.last_step or 0) for m in moving)
                expl = (f"{who(r)} has not logged a step for {_fmt_s(stall[r.key])} (the limit is {_fmt_s(limit)}: "
                        f"max({_fmt_s(s.hang_min)}, {s.hang_factor:g}x the job's {_fmt_s(pace)} step time)); it "
                        f"stopped at step {st} ({hb(r)}) while {ranks_text(moving)} go on (step {ahead}). "
                        f"The others will wait for it at the next collective.")
                ev = {"rank": r.rank, "host": host_of(r), "step": st, "stalled_s": stall[r.key], "limit_s": limit,
                      "heartbeats": alive[r.key], "others_step": ahead}
                # its id names only r: it stays put as other ranks stop or go on
                out.append(make_finding("distributed", "hung_rank", [r, *moving], st, "critical", 0.8, ev, expl,
                                        seen_at_step=st, about_first=True))
            return out
        # every active rank stopped: the job is hung. Who stopped first?
        first, why, spread = self._first_stopped(stopped, alive, stall, pace)
        rest = [r for r in stopped if r not in first]
        lo = min((r.last_step for r in stopped if r.last_step is not None), default=None)
        hi = max((r.last_step for r in stopped if r.last_step is not None), default=None)
        quiet = [r for r in stopped if not alive[r.key]]
        longest = max(stall.values())
        if first and len(first) < len(stopped):
            culprit = f"{ranks_text(first)} stopped first ({why}): look there first"
        else:
            culprit = (f"all {len(stopped)} ranks stopped at the same step within {_fmt_s(spread)}: "
                       "one rank never reached a collective the others wait in; the streams cannot tell which "
                       "(py-spy dump --pid on each rank, or TORCH_DISTRIBUTED_DEBUG=DETAIL, names it)")
        steps_txt = f"step {lo}" if lo == hi else f"steps {lo}..{hi}"
        life = ("the processes are alive (heartbeats come) but no loop moves" if not quiet else
                (f"{ranks_text(quiet)} send nothing at all" if len(quiet) < len(stopped) else
                 "no rank sends anything (not even heartbeats): processes frozen, killed or hosts lost"))
        expl = (f"The job is hung at {steps_txt}: no rank has logged a step for {_fmt_s(min(stall.values()))} "
                f"(the limit is {_fmt_s(limit)}); {life}. {culprit}.")
        ev = {"step": lo, "ranks": len(ranks), "stalled_s": longest, "limit_s": limit, "job_step_time": pace,
              "stopped_first": [r.rank for r in first], "silent_ranks": [r.rank for r in quiet],
              "steps": {str(r.rank): r.last_step for r in stopped}}
        order = list(first) + rest + [r for r in ranks if r not in stopped]
        return [make_finding("distributed", "job_hung", order, lo, "critical", 0.9 if first else 0.8, ev, expl,
                             seen_at_step=hi, about_first=True)]

    def _first_stopped(self, stopped, alive, stall, pace) -> Tuple[List[Any], str, float]:
        """The ranks that stopped first: the ones that went quiet (no
        heartbeats) while others still send, else the lowest step, else the
        earliest last log (by more than half a step time), else a rank whose
        accelerator idles while the others' spin in the collective."""
        quiet = [r for r in stopped if not alive[r.key]]
        if quiet and len(quiet) < len(stopped):
            return quiet, "they send nothing at all while the others still send heartbeats", 0.0
        steps = [r.last_step for r in stopped if r.last_step is not None]
        if steps and min(steps) < max(steps):
            lo = min(steps)
            return ([r for r in stopped if r.last_step == lo],
                    f"at step {lo}, behind the others at up to step {max(steps)}", 0.0)
        spread = 0.0
        logs = {r.key: r.last_log for r in stopped if r.last_log is not None}
        if len(logs) == len(stopped):
            t0 = min(logs.values())
            tol = max(0.5 * (pace or 0.0), self.settings.straggler_min_seconds)
            spread = max(logs.values()) - t0
            early = [r for r in stopped if logs[r.key] - t0 <= tol]
            if len(early) < len(stopped) and spread > tol:
                return early, f"their last step came {_fmt_s(spread)} before the others'", spread
        # where each rank's main thread waits (heartbeats may carry it: "where"):
        # the ranks outside the place most wait in are not in the collective
        where = {}
        for r in stopped:
            w = (r.heartbeat or {}).get("where") if isinstance(r.heartbeat, dict) else None
            if isinstance(w, list):
                w = " < ".join(str(x) for x in w[:3])
            if isinstance(w, str) and w:
                where[r.key] = w[:300]
        if len(where) == len(stopped) and len(set(where.values())) > 1:
            counts: Dict[str, int] = {}
            for w in where.values():
                counts[w] = counts.get(w, 0) + 1
            common = max(counts, key=lambda w: counts[w])
            if counts[common] > len(stopped) / 2:
                odd = [r for r in stopped if where[r.key] != common]
                w0 = where[odd[0].key]
                return odd, f"it waits in {w0} while the others wait in {common}", spread
        util = {}
        for r in stopped:
            ser = r.series.get(("system", "gpu_util"))
            if ser is not None and len(ser):
                util[r.key] = float(ser.last()[1])
        if len(util) == len(stopped):
            busy = _median(list(util.values()))
            idle = [r for r in stopped if util[r.key] <= 10 and (busy or 0) >= 50]
            if idle:
                return idle, f"its GPU idles while the others' spin at {busy:.0f}% in the collective they wait in", spread
        return [], "", spread

    # -- crashed ---------------------------------------------------------------

    def _crashed(self, ranks: List[Any], now: float) -> List[Finding]:
        s = self.settings
        gone = [r for r in ranks if r.status == "crashed"]
        if not gone:
            return []

        def when(r) -> float:
            end = r.end or {}
            t = end.get("time")
            if end.get("inferred") or not isinstance(t, (int, float)):
                t = r.last_seen
            return float(t) if isinstance(t, (int, float)) else math.inf

        # a rank that went quiet (no end record, no heartbeat) before the first
        # crash is the likelier first to go: the others crash when it vanishes.
        # Quiet for a while, or quiet since before a crash on a lost peer.
        first_crash = min(gone, key=when)
        t_crash = when(first_crash)
        limit = self.hang_after(ranks)
        peer_loss = lost_peer(first_crash)
        vanished = [r for r in ranks if r.status in UNENDED and r.last_seen is not None
                    and r.last_seen < t_crash
                    and (peer_loss or (now - (r.last_arrival or now)) >= min(limit, s.hang_min))]
        cands = gone + vanished
        first = min(cands, key=when)
        later = sorted([r for r in gone if r is not first], key=when)
        going = [r for r in ranks if r.status in UNENDED and r not in vanished]
        done = [r for r in ranks if r.status in ("finished", "interrupted")]
        end = first.end or {}
        err = end.get("error") if isinstance(end.get("error"), dict) else {}
        if first in vanished:
            how = "went quiet with no end record and no heartbeats (killed? host lost?)"
            if peer_loss:
                how += f", before {who(first_crash)} crashed on a lost peer"
        elif end.get("inferred"):
            how = "'s process ended without an end record (killed? out of memory?)"
        else:
            how = f"crashed with {err.get('type', 'an error')}: {str(err.get('message', ''))[:200]}".rstrip(": ")
        step = first.last_step
        at = f"at step {step}" if step is not None else "before any step reached its stream"
        expl = f"{who(first)}{'' if how.startswith(chr(39)) else ' '}{how} {at}"
        tail = []
        if going:
            tail.append(f"{ranks_text(going)} still run and will block at the next collective")
        if later:
            tail.append(f"{ranks_text(later)} crashed after it (within {_fmt_s(when(later[-1]) - when(first))}): "
                        "the job went down with it")
        if done:
            tail.append(f"{ranks_text(done)} were stopped")
        if tail:
            expl += "; " + "; ".join(tail)
        expl += "."
        ev = {"rank": first.rank, "host": host_of(first), "step": step, "error": err.get("type"),
              "message": str(err.get("message", ""))[:200], "inferred": bool(end.get("inferred")) or first in vanished,
              "running": [r.rank for r in going], "crashed_after": [r.rank for r in later],
              "stopped": [r.rank for r in done]}
        others = later + going + done + [r for r in vanished if r is not first]
        # its id names only the first rank down: the others change order as they crash after it
        return [make_finding("distributed", "rank_crashed", [first, *others], step, "critical", 0.95, ev, expl,
                             seen_at_step=step, about_first=True)]

    # -- divergence --------------------------------------------------------------

    def _divergence(self, ranks: List[Any]) -> List[Finding]:
        s = self.settings
        out = []
        for metric, label in (("loss", "loss"), ("grad_norm", "gradient norm")):
            tracks = {r.key: self.tracks.get(r.key) for r in ranks}
            bad = [r for r in ranks if tracks[r.key] is not None and metric in tracks[r.key].first_bad]
            if bad and len(bad) < len(ranks):
                for r in bad:
                    step, v = tracks[r.key].first_bad[metric]
                    fine = [x for x in ranks if x not in bad and tracks[x.key] is not None
                            and tracks[x.key].last_finite_step.get(metric, -1) >= step]
                    if not fine:
                        continue
                    expl = (f"{who(r)} has a non-finite {label} ({v}) from step {step} while {ranks_text(fine)} "
                            f"stay finite at the same steps: that rank's data shard or device is the suspect, not "
                            "the optimizer (a bad batch, a faulty GPU, uninitialised memory)")
                    ev = {"rank": r.rank, "host": host_of(r), "metric": metric, "first_step": step, "value": v,
                          "finite_ranks": [x.rank for x in fine]}
                    # its id names only r: it stays put as other ranks pass the step or go bad
                    out.append(make_finding("distributed", "rank_divergence", [r, *fine], step, "critical", 0.9,
                                            ev, expl, seen_at_step=r.last_step, about_first=True))
                continue
            if len(ranks) < 3:
                continue
            meds = {}
            for r in ranks:
                tr = tracks[r.key]
                vals = tr.recent.get(metric) if tr is not None else None
                if vals is None or vals.size < s.straggler_min_points:
                    break
                meds[r.key] = float(np.median(vals))
            if len(meds) < len(ranks) or min(meds.values()) <= 0:
                continue
            logs = {k: math.log(v) for k, v in meds.items()}
            for r in ranks:
                others = [v for k, v in logs.items() if k != r.key]
                center = float(np.median(others))
                spread = 1.4826 * float(np.median(np.abs(np.array(others) - center)))
                dev = logs[r.key] - center
                keep = ("rank_divergence", r.key) in self.active
                need = math.log(s.divergence_keep if keep else s.divergence_ratio)
                if abs(dev) >= need and abs(dev) >= s.divergence_sigmas * spread:
                    rest = [x for x in ranks if x is not r]
                    other = math.exp(center)
                    expl = (f"{who(r)}'s {label} is {meds[r.key]:.4g} (median of its last "
                            f"{s.straggler_window} values) against {other:.4g} on the median of the other "
                            f"{len(rest)} ranks ({math.exp(abs(dev)):.1f}x {'higher' if dev > 0 else 'lower'}, "
                            "far outside their spread): ranks that should agree have drifted apart (a different "
                            "data shard, replicas out of sync, a faulty device)")
                    ev = {"rank": r.rank, "host": host_of(r), "metric": metric, "value": meds[r.key],
                          "others_median": other, "ratio": math.exp(dev)}
                    tr = tracks[r.key]
                    out.append(make_finding("distributed", "rank_divergence", [r, *rest], None, "warning",
                                            min(0.9, 0.6 + 0.1 * abs(dev)), ev, expl, seen_at_step=r.last_step))
        return out


__all__ += ["who", "host_of", "ranks_text", "clock_series"]
_ = run_label
