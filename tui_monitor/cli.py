"""The ``tui-monitor`` command line.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares
its arguments and ``_run_<name>(args) -> int`` runs it; listing the adder in
``_COMMANDS`` is all it takes to add one. Dependencies are imported inside the
``_run_`` functions, so importing this module (or running ``version``) loads
neither pydantic nor textual.

Output is plain text. Strings from a stream are data: control characters
(ANSI escapes included) are shown escaped, never sent to the terminal.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, TextIO

PROG = "tui-monitor"

DESCRIPTION = """\
Watch PyTorch training runs and be told why a run is not working.

A training script writes a stream (JSON Lines, see docs/stream-format.md)
through `import tui_monitor; run = tui_monitor.init(...)`; this command
reads such streams."""

EPILOG = """\
examples:
  tui-monitor cat runs/resnet20.jsonl            the header, then one row per record
  tui-monitor cat --split val --tail 20 run.jsonl
                                                 the last 20 rows, validation metrics only
  tui-monitor cat --json run.jsonl | jq .values  the decoded records as JSON lines
  tail -c +1 -f run.jsonl | tui-monitor cat -    read a stream from standard input
  tui-monitor version

Run `tui-monitor COMMAND --help` for a command's options.
exit status: 0 ok (problems inside a stream are reported, not fatal),
             1 a file could not be read, 2 usage error."""


# ---------------------------------------------------------------- safe text

_ESCAPES: Optional[Dict[int, str]] = None


def _escapes() -> Dict[int, str]:
    global _ESCAPES
    if _ESCAPES is None:
        table: Dict[int, str] = {}
        for c in list(range(0x20)) + list(range(0x7F, 0xA0)):
            table[c] = f"\\x{c:02x}"
        table[ord("\t")] = "\\t"
        table[ord("\n")] = "\\n"
        table[ord("\r")] = "\\r"
        # bidirectional overrides and isolates can reorder what is shown
        for c in list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A)) + [0x200E, 0x200F, 0x061C]:
            table[c] = f"\\u{c:04x}"
        for c in range(0xD800, 0xE000):  # lone surrogates (from \\ud800 escapes) cannot be printed
            table[c] = f"\\u{c:04x}"
        _ESCAPES = table
    return _ESCAPES


_JSON_ESCAPES: Optional[Dict[int, str]] = None


def _json_escapes() -> Dict[int, str]:
    global _JSON_ESCAPES
    if _JSON_ESCAPES is None:
        _JSON_ESCAPES = {c: f"\\u{c:04x}" for c in _escapes() if c >= 0x7F}
    return _JSON_ESCAPES


def clean(text: Any) -> str:
    """``text`` as a string safe to print: control characters, bidi overrides
    and lone surrogates escaped as ``\\x1b``, ``\\u202e``..."""
    return str(text).translate(_escapes())


# ---------------------------------------------------------------- parser

def _add_version(sub) -> None:
    p = sub.add_parser("version", help="print the version", description="Print the version and exit.")
    p.set_defaults(func=_run_version)


def _run_version(args: argparse.Namespace) -> int:
    from ._version import __version__

    print(f"{PROG} {__version__}")
    return 0


def _add_cat(sub) -> None:
    p = sub.add_parser(
        "cat", help="print streams as text (or decoded JSON lines)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print stream files as plain text: the run's header (name, id, host, config, the\n"
                    "model's flexibility), one row per metrics record (a record with keys of several\n"
                    "splits gives a row per split), summaries of gradient, heartbeat, dropped and end\n"
                    "records, and at the end every line that could not be read, as FILE:LINE: reason.",
        epilog="examples:\n"
               "  tui-monitor cat runs/a.jsonl runs/b.jsonl\n"
               "  tui-monitor cat --split val --tail 5 runs/a.jsonl\n"
               "  tui-monitor cat --json runs/a.jsonl > clean.jsonl")
    p.add_argument("paths", nargs="+", metavar="PATH", help="stream file(s); - reads standard input")
    p.add_argument("--json", action="store_true",
                   help="print the decoded records as JSON lines (non-finite values as \"NaN\", "
                        "\"Infinity\", \"-Infinity\"); problems go to standard error")
    p.add_argument("--split", metavar="SPLIT",
                   help="only metrics of this split: train, val or test (spellings such as validation "
                        "or eval are accepted); other records are still shown")
    p.add_argument("--tail", type=_non_negative, metavar="N",
                   help="only the last N rows per file (the header is always shown)")
    p.set_defaults(func=_run_cat)


def _non_negative(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


def _add_watch(sub) -> None:
    p = sub.add_parser(
        "watch", help="follow runs live (files, folders, a socket)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Follow every run under the given files and folders (recursively, *.jsonl): runs\n"
                    "already finished, runs in progress (history first, then live) and runs that start\n"
                    "later. With --listen, hooks can also stream to this process over TCP or a Unix\n"
                    "socket (one SSH tunnel is enough); a late start still gets the whole history.\n"
                    "With --once, print each run's status and last values and exit.",
        epilog="examples:\n"
               "  tui-monitor watch runs/                     follow a folder of runs\n"
               "  tui-monitor watch --once runs/              print a table of the runs and exit\n"
               "  tui-monitor watch --listen 127.0.0.1:7007   hooks send with init(..., to=\"127.0.0.1:7007\")\n"
               "  tui-monitor watch --listen unix:/tmp/tm.sock runs/\n"
               "  ssh -R 7007:127.0.0.1:7007 gpu-box          let a remote job reach your laptop\n"
               "  tui-monitor watch --poll /nfs/runs/         force polling (auto-detected on NFS, Lustre, sshfs)\n"
               "  tui-monitor watch tb_logs/ lightning_logs/  TensorBoard event files, CSV logs\n"
               "  tui-monitor watch slurm-1234.out            a job's printed output: progress lines become metrics\n"
               "  python train.py | tee log.txt | tui-monitor watch -")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="stream files or folders (default: runs/ if it exists); TensorBoard event files and CSV "
                        "logs are found in folders; a text log named here is parsed; - reads standard input")
    p.add_argument("--parse-regex", action="append", metavar="REGEX", default=[],
                   help="for text logs: a Python regex whose named groups are metrics (and step, split), "
                        "e.g. 'it (?P<step>\\d+) l=(?P<loss>\\S+)'; tried before the built-in patterns")
    p.add_argument("--listen", metavar="ADDR",
                   help="also accept hook connections at HOST:PORT or unix:/PATH (loopback unless --token)")
    p.add_argument("--token", metavar="TOKEN",
                   help="shared secret hooks must present (TUI_MONITOR_TOKEN); required off loopback")
    p.add_argument("--poll", action="store_true",
                   help="poll files instead of relying on filesystem events")
    p.add_argument("--once", action="store_true", help="print the runs as a table and exit (no TUI)")
    p.set_defaults(func=_run_watch)


def _run_watch(args: argparse.Namespace) -> int:
    import os

    paths = list(args.paths)
    stdin = "-" in paths
    paths = [p for p in paths if p != "-"]
    from .sources.text import attach, compile_patterns, reattach_tty
    try:
        patterns = compile_patterns(args.parse_regex)
    except ValueError as e:
        print(f"{PROG} watch: {clean(e)}", file=sys.stderr)
        return 2
    if not paths and not args.listen and not stdin:
        if os.path.isdir("runs"):
            paths = ["runs"]
        else:
            print(f"{PROG} watch: give a file or folder to follow, or --listen ADDR "
                  f"(there is no runs/ folder here)", file=sys.stderr)
            return 2
    if args.once and args.listen:
        print(f"{PROG} watch: --once reads files; it cannot be used with --listen", file=sys.stderr)
        return 2
    missing = [p for p in paths if not os.path.exists(p)]
    if args.once:
        if missing:
            print(f"{PROG} watch: no such file or folder: {clean(missing[0])}", file=sys.stderr)
            return 1
        from .sources import open_ingest
        from .summary import runs_table

        store, ingest = open_ingest(paths, poll=args.poll or None, start=False)
        attach(ingest, patterns, stdin)
        ingest.read_all()
        if not store.runs:
            print(f"no runs found in {', '.join(clean(p) for p in paths)}")
        else:
            print(runs_table(store))
        for problem in ingest.problems:
            print(clean(str(problem)), file=sys.stderr)
        return 0
    try:
        from .sources import open_ingest
        store, ingest = open_ingest(paths, listen=args.listen, token=args.token, poll=args.poll or None,
                                    start=False)
        attach(ingest, patterns, stdin)
        ingest.start()
    except (OSError, ValueError) as e:
        print(f"{PROG} watch: {clean(e)}", file=sys.stderr)
        return 2
    try:
        from .tui import run_app
    except ImportError as e:
        ingest.stop()
        print(f"{PROG} watch: the TUI is not available ({clean(e)}); use --once", file=sys.stderr)
        return 1
    if stdin and not reattach_tty():
        ingest.stop()
        print(f"{PROG} watch: reading standard input, and there is no terminal for the TUI; use --once",
              file=sys.stderr)
        return 1
    try:
        return run_app(store, ingest) or 0
    finally:
        ingest.stop()


def _add_diagnose(sub) -> None:
    p = sub.add_parser(
        "diagnose", help="say why runs are not working (findings of the diagnostic method)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read stream files (or folders of them, recursively *.jsonl) and print the findings of the\n"
                    "diagnostic method (docs/diagnosis.md): model bias, optimization, overfitting, mismatch,\n"
                    "divergence, with evidence, confidence and advice; then each run's decision path and any\n"
                    "cross-validation summary.",
        epilog="examples:\n"
               "  tui-monitor diagnose runs/\n"
               "  tui-monitor diagnose --baseline linear runs/*.jsonl\n"
               "  tui-monitor diagnose --task classification --num-classes 10 --json runs/ | jq .findings\n"
               "exit status: 0 nothing at warning level or above, 1 there is, 2 usage or input error")
    p.add_argument("paths", nargs="+", metavar="PATH", help="stream files or folders (searched for *.jsonl)")
    p.add_argument("--baseline", metavar="RUN", help="run name or id to compare the other runs of the same data against")
    p.add_argument("--json", action="store_true", help="print the report as JSON (docs/diagnosis.schema.json)")
    p.add_argument("--task", choices=["classification", "regression"],
                   help="the task, for the trivial loss (overrides the runs' config)")
    p.add_argument("--num-classes", type=int, metavar="C", help="classes, for --task classification (ln C)")
    p.add_argument("--target-var", type=float, metavar="V", help="target variance, for --task regression")
    p.set_defaults(func=_run_diagnose)


def _run_diagnose(args: argparse.Namespace) -> int:
    import json
    import os

    from .diagnose import Diagnoser, report_dict, report_text
    from .diagnose.report import exit_status
    from .schema import split_metric
    from .store import Store
    from .stream import read_file, record_to_json

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
        except OSError as e:
            print(f"{PROG}: cannot read {clean(f)}: {clean(e.strerror or e)}", file=sys.stderr)
            return 2
        store.apply_many([record_to_json(r) for r in records], stream=f)
    task = None
    if args.task or args.num_classes or args.target_var:
        task = {"task": args.task, "num_classes": args.num_classes, "target_var": args.target_var}
    engine = Diagnoser(store, baseline=args.baseline, task=task)
    engine.update()
    if args.baseline and not any(args.baseline in (r.name, r.run_id) for r in store):
        print(f"{PROG}: no run named {clean(args.baseline)}", file=sys.stderr)
        return 2
    if args.json:
        text = json.dumps(report_dict(engine), ensure_ascii=False, allow_nan=False)
        sys.stdout.write(text.translate(_json_escapes()) + "\n")
    else:
        sys.stdout.write(report_text(engine, clean))
    return exit_status(engine)


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo", help="train small real runs in the background and watch them (needs torch)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start several small real PyTorch training runs in the background (CPU, up to a\n"
                    "minute each) that walk through the guidance: a linear baseline (model bias), an\n"
                    "MLP that fits, a too-deep plain net worse on training data than a shallow one\n"
                    "(optimization), a big net that overfits, a shifted test set (mismatch) and a run\n"
                    "that diverges; open the TUI on them while they train. Every run is stopped and\n"
                    "the temporary folder removed when the demo ends, however it ends.",
        epilog="examples:\n"
               "  tui-monitor demo\n"
               "  tui-monitor demo --no-tui              train, then print the runs and the diagnosis\n"
               "  tui-monitor demo --dir runs/ --fast    keep the streams in runs/")
    p.add_argument("--dir", metavar="DIR", help="write the streams here and keep them (default: a temporary folder)")
    p.add_argument("--no-tui", action="store_true", help="wait for the runs, print the runs table and the diagnosis")
    p.add_argument("--fast", action="store_true", help="train at full speed (default: slowed down to watch live)")
    p.add_argument("--delay", type=float, default=0.05, metavar="S",
                   help="seconds each run sleeps after a step (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="data and initialisation seed (default 0)")
    p.add_argument("--runs", metavar="NAMES",
                   help="comma-separated scenarios to train instead of the default set "
                        "(see python -m tui_monitor.scenarios --list)")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    from .scenarios import SCENARIOS

    names = [n.strip() for n in args.runs.split(",") if n.strip()] if args.runs else None
    unknown = [n for n in names or () if n not in SCENARIOS]
    if unknown:
        print(f"{PROG} demo: no scenario {clean(unknown[0])!r}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    return run_demo(args.dir, tui=not args.no_tui, delay=0.0 if args.fast else max(0.0, args.delay), seed=args.seed,
                    scenarios=names)


#: Every subcommand, by its adder. Later: demo.
_COMMANDS: Sequence[Callable[[Any], None]] = (_add_cat, _add_watch, _add_diagnose, _add_demo, _add_version)


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-V", "--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 unreadable input, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: a command is required (try `{PROG} --help`)", file=sys.stderr)
        return 2
    for stream in (sys.stdout, sys.stderr):
        try:  # a stream's text must never crash the printing of it
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    try:
        return args.func(args)
    except BrokenPipeError:  # `tui-monitor cat big.jsonl | head`
        try:
            sys.stdout = None  # type: ignore[assignment]  # nothing more can be flushed
        except Exception:  # noqa: BLE001
            pass
        return 0
    except KeyboardInterrupt:
        return 130


# ---------------------------------------------------------------- cat

def _run_cat(args: argparse.Namespace) -> int:
    from .schema import normalise_split
    from .stream import StreamReader

    split = normalise_split(args.split) if args.split else None
    status = 0
    for i, path in enumerate(args.paths):
        name = "<stdin>" if path == "-" else path
        reader = StreamReader(name)
        records: List[Any] = []
        try:
            if path == "-":
                _read_into(sys.stdin.buffer, reader, records)
            else:
                with open(path, "rb") as f:
                    _read_into(f, reader, records)
        except OSError as e:
            print(f"{PROG}: cannot read {clean(name)}: {clean(e.strerror or e)}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            _print_json(records, reader, split, args.tail, sys.stdout, sys.stderr)
        else:
            if i:
                print()
            if len(args.paths) > 1:
                print(f"== {clean(name)}")
            _print_table(records, reader, split, args.tail, sys.stdout)
    return status


def _read_into(f, reader, records: List[Any]) -> None:
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        records.extend(reader.feed(chunk))


def _split_values(rec, split: Optional[str]) -> Dict[str, Dict[str, Any]]:
    """Values (and text) of a metrics record grouped by split: split -> metric -> value."""
    from .schema import split_metric

    groups: Dict[str, Dict[str, Any]] = {}
    for source in (rec.values, rec.text or {}):
        for key, value in source.items():
            s, metric = split_metric(key, rec.split)
            if split is None or s == split:
                groups.setdefault(s, {})[metric] = value
    return groups


def _print_json(records, reader, split, tail, out: TextIO, err: TextIO) -> None:
    from .schema import split_metric
    from .stream import dumps_record

    # run and meta records are always kept; --split and --tail apply to the others
    out_records = []
    for r in records:
        if split is not None and r.type == "metrics":
            keep = {k for k in list(r.values) + list(r.text or {}) if split_metric(k, r.split)[0] == split}
            if not keep:
                continue
            update: Dict[str, Any] = {"values": {k: v for k, v in r.values.items() if k in keep}}
            if r.text:
                update["text"] = {k: v for k, v in r.text.items() if k in keep}
            r = r.model_copy(update=update)
        out_records.append(r)
    if tail is not None:
        rows = [i for i, r in enumerate(out_records) if r.type not in ("run", "meta")]
        drop = set(rows[:len(rows) - tail]) if tail < len(rows) else set()
        out_records = [r for i, r in enumerate(out_records) if i not in drop]
    table = _json_escapes()
    for r in out_records:
        # valid JSON either way; DEL, C1 controls and bidi overrides escaped for the terminal
        out.write(dumps_record(r).decode("utf-8").translate(table) + "\n")
    for p in reader.problems:
        err.write(clean(p) + "\n")
    _print_summary(reader, err, problems=False)


def _print_table(records, reader, split, tail, out: TextIO) -> None:
    # the header shown is the first run record amended by every meta record
    header = header_record = None
    for r in records:
        if r.type == "run":
            if header is None:
                header = header_record = r
        elif r.type == "meta" and header is not None:
            header = header.amended(r)
    start = header.start if header is not None and header.start is not None else None
    if start is None:
        times = [r.time for r in records if getattr(r, "time", None) is not None]
        start = min(times) if times else None
    _print_header(header, [r for r in records if r.type == "meta"] if header is None else [], out)

    rows: List[List[str]] = []
    for r in records:
        if r is not header_record:  # the header block shows it; a later header gets a row
            rows.extend(_rows(r, split, start))
    if tail is not None:
        rows = rows[len(rows) - tail:] if tail else []
    if rows:
        out.write("\n")
        widths = [max(len(row[c]) for row in rows + [_ROW_HEAD]) for c in range(3)]
        for row in [_ROW_HEAD] + rows:
            out.write(f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip() + "\n")
    elif records:
        out.write("\n(no rows)\n")
    _print_summary(reader, out, problems=True)


_ROW_HEAD = ["step", "kind", "time", "values"]


def _print_header(h, metas, out: TextIO) -> None:
    if h is None:
        out.write("run      (no run header in this stream)\n")
        for m in metas:
            if m.model is not None:
                out.write(f"model    {_model_text(m.model)}\n")
        return
    name = clean(h.name) if h.name else "(unnamed)"
    out.write(f"run      {name}  id {clean(h.run_id)}\n")
    out.write(f"host     {clean(h.host) or '?'}  pid {h.pid if h.pid is not None else '?'}  "
              f"rank {h.rank}/{h.world_size}\n")
    out.write(f"started  {_when(h.start)}\n")
    out.write(f"config   {_mapping(h.config) or '(none)'}\n")
    out.write(f"model    {_model_text(h.model) if h.model is not None else '(not given)'}\n")
    if h.tags:
        out.write(f"tags     {_mapping(h.tags)}\n")
    if h.v != 1:
        out.write(f"format   v{h.v}\n")


def _when(t: Optional[float]) -> str:
    if t is None:
        return "?"
    import datetime

    try:
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return _num(t)


def _mapping(d: Dict[str, Any]) -> str:
    return "  ".join(f"{clean(k)}={_value(v)}" for k, v in d.items())


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "true" if v is True else ("false" if v is False else "null")
    if isinstance(v, (int, float)):
        return _num(v)
    if isinstance(v, str):
        return clean(v)
    import json

    try:
        return clean(json.dumps(v, ensure_ascii=False, allow_nan=True, default=repr))
    except (ValueError, TypeError, RecursionError):
        return clean(repr(v))


def _num(v: Any) -> str:
    if type(v) is float:
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "Infinity" if v > 0 else "-Infinity"
        text = format(v, ".6g")
        return text if any(c in text for c in ".en") else text + ".0"  # 1.0 is not the int 1
    return str(v)


def _model_text(m) -> str:
    parts = []
    if m.params is not None:
        parts.append(f"{m.params:,} params")
    if m.trainable_params is not None:
        parts.append(f"{m.trainable_params:,} trainable")
    for label, v in (("depth", m.depth), ("width", m.width), ("input features", m.input_features)):
        if v is not None:
            parts.append(f"{label} {v}")
    if m.layers:
        parts.append(f"layers {clean(m.layers[0])} .. {clean(m.layers[-1])}" if len(m.layers) > 1
                     else f"layer {clean(m.layers[0])}")
    return ", ".join(parts) or "(nothing known)"


def _rel(t: Optional[float], start: Optional[float]) -> str:
    if t is None:
        return ""
    if start is None:
        return _num(t)
    dt = t - start
    sign = "-" if dt < 0 else "+"
    dt = abs(dt)
    if dt != dt or dt == float("inf"):
        return "?"
    h, rest = divmod(dt, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{int(h)}:{int(m):02d}:{s:04.1f}"


def _rows(r, split: Optional[str], start: Optional[float]) -> Iterable[List[str]]:
    t = r.type
    if t == "metrics":
        for s, vals in _split_values(r, split).items():
            yield [str(r.step), clean(s), _rel(r.time, start),
                   "  ".join(f"{clean(k)}={_value(v)}" for k, v in vals.items())]
    elif t == "grads":
        grads = [g.grad for g in r.layers.values() if g.grad is not None]
        text = f"norm={_num(r.norm) if r.norm is not None else '?'}  {len(r.layers)} layers"
        if grads:
            text += f"  layer grad {_num(min(grads))}..{_num(max(grads))}"
        zero = [(clean(n), g.zero_rows) for n, g in r.layers.items() if g.zero_rows]
        if zero:
            text += "  zero rows: " + ", ".join(f"{n} {_num(z)}" for n, z in zero[:3])
            if len(zero) > 3:
                text += f" and {len(zero) - 3} more"
        yield [str(r.step), "grads", _rel(r.time, start), text]
    elif t == "heartbeat":
        text = "alive"
        if r.last_log is not None:
            text += f", last log {_num(round(r.time - r.last_log, 1))}s before"
        yield [str(r.step) if r.step is not None else "", "heartbeat", _rel(r.time, start), text]
    elif t == "dropped":
        reasons = ", ".join(f"{clean(k)} {n}" for k, n in r.reasons.items())
        yield ["", "dropped", _rel(r.time, start), f"{r.count} so far" + (f": {reasons}" if reasons else "")]
    elif t == "end":
        text = clean(r.status)
        if r.error is not None:
            text += f": {clean(r.error.type)}: {clean(r.error.message)}"
        if r.signal:
            text += f" ({clean(r.signal)})"
        text += f"  dropped={r.dropped}"
        yield [str(r.step) if r.step is not None else "", "end", _rel(r.time, start), text]
    elif t == "meta":
        changed = sorted(n for n in r.model_fields_set if n not in ("type", "seq", "time"))
        yield ["", "meta", _rel(r.time, start), "amends " + ", ".join(changed) if changed else "(nothing)"]
    elif t == "run":
        yield ["", "run", _rel(r.start, start), f"a new run starts: {clean(r.name)} id {clean(r.run_id)} "
                                                f"pid {r.pid if r.pid is not None else '?'}"]
    else:  # socket messages, should one be in a file
        yield ["", clean(t), "", ""]


def _print_summary(reader, out: TextIO, problems: bool) -> None:
    st = reader.stats
    if problems and reader.problems:
        out.write(f"\nproblems ({reader.problem_count}):\n")
        for p in reader.problems:
            out.write(f"  {clean(p)}" + (" [warning]" if p.severity == "warning" else "") + "\n")
        hidden = reader.problem_count - len(reader.problems)
        if hidden:
            out.write(f"  ... and {hidden} earlier (only the last {len(reader.problems)} are kept)\n")
    notes = []
    for type_, n in sorted(st.skipped.items()):
        notes.append(f"skipped {n} record{'s' * (n != 1)} of unknown type {clean(type_)!r} (written by a newer version?)")
    if st.duplicates:
        notes.append(f"dropped {st.duplicates} duplicate record{'s' * (st.duplicates != 1)} (seq already seen)")
    if st.missing:
        notes.append(f"{st.missing} record{'s' * (st.missing != 1)} missing (gaps in seq)")
    if reader.pending_bytes:
        notes.append(f"the last line ({reader.pending_bytes} bytes) has no newline: not yet written, not read")
    if notes:
        out.write("\n" if problems else "")
        for n in notes:
            out.write(f"note: {n}\n")


if __name__ == "__main__":
    sys.exit(main())
