"""The ``tui-monitor`` command line: the parser and the entry point.

Each subcommand is a pair: ``_add_<name>(subparsers)`` here declares its
arguments, and ``tui_monitor.commands.<name>.run(args) -> int`` runs it;
listing the adder in ``_COMMANDS`` is all it takes to add one. A command's
module is imported only when it runs, so importing this module (or running
``version``) loads neither pydantic nor textual.

Output is plain text. Strings from a stream are data: control characters
(ANSI escapes included) are shown escaped, never sent to the terminal
(:func:`clean`, from :mod:`tui_monitor.safe_text`).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional, Sequence

from .commands import PROG
from .safe_text import clean

__all__ = ["PROG", "build_parser", "clean", "main"]


DESCRIPTION = """\
Watch PyTorch training runs and be told why a run is not working.

A training script writes a stream (JSON Lines, see docs/stream-format.md)
through `import tui_monitor; run = tui_monitor.init(...)`. This command
reads those streams, and the logs runs already leave: TensorBoard event
files, CSV logs (Lightning, Keras, Ultralytics), Hugging Face
trainer_state.json, MLflow and offline W&B runs, printed training output."""

EPILOG = """\
examples:
  tui-monitor demo                               train small real runs and watch them (needs torch)
  tui-monitor watch runs/                        follow a folder of runs live in the terminal
  tui-monitor watch --once lightning_logs/       print a table of the runs and exit
  python train.py | tee log.txt | tui-monitor watch -
                                                 read what a training script prints
  tui-monitor diagnose runs/                     say why runs are not working (exit 1 on a problem)
  tui-monitor diagnose --follow runs/            print findings as they come, for a tmux pane or a log
  tui-monitor cat runs/resnet20.jsonl            a stream as a table: the header, then a row per record

Run `tui-monitor COMMAND --help` for a command's options and more examples.
exit status: 0 ok (problems inside a stream are reported, not fatal),
             1 a file could not be read, 2 usage error."""


# ---------------------------------------------------------------- parser

def _add_version(sub) -> None:
    p = sub.add_parser("version", help="print the version", description="Print the version and exit.")
    p.set_defaults(func=_run_version)


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """The runner of subcommand ``name``: ``tui_monitor.commands.<name>.run``,
    imported only when that command runs (so ``--help`` loads nothing heavy)."""
    def run(args: argparse.Namespace) -> int:
        import importlib

        return importlib.import_module(f".commands.{name}", __package__).run(args)
    return run


def _run_version(args: argparse.Namespace) -> int:
    from ._version import __version__

    print(f"{PROG} {__version__}")
    return 0


def _add_cat(sub) -> None:
    p = sub.add_parser(
        "cat", help="print a stream or log as text (or decoded JSON lines)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print stream files as plain text: the run's header (name, id, host, config, the\n"
                    "model's flexibility), one row per metrics record (a record with keys of several\n"
                    "splits gives a row per split), summaries of gradient, heartbeat, dropped and end\n"
                    "records, and at the end every line that could not be read, as FILE:LINE: reason.\n"
                    "Any other log watch reads (a TensorBoard event file, a CSV log, trainer_state.json,\n"
                    "printed output...) is printed as the records it was read into.",
        epilog="examples:\n"
               "  tui-monitor cat runs/a.jsonl runs/b.jsonl\n"
               "  tui-monitor cat --split val --tail 5 runs/a.jsonl\n"
               "  tui-monitor cat --json runs/a.jsonl > clean.jsonl")
    p.add_argument("paths", nargs="+", metavar="PATH", help="stream or log file(s); - reads standard input")
    p.add_argument("--json", action="store_true",
                   help="print the decoded records as JSON lines (non-finite values as \"NaN\", "
                        "\"Infinity\", \"-Infinity\"); problems go to standard error")
    p.add_argument("--split", metavar="SPLIT",
                   help="only metrics of this split: train, val or test (spellings such as validation "
                        "or eval are accepted); other records are still shown")
    p.add_argument("--tail", type=_non_negative, metavar="N",
                   help="only the last N rows per file (the header is always shown)")
    p.set_defaults(func=_command("cat"))


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
        description="Follow every run under the given files and folders, recursively (streams, and the\n"
                    "logs other tools leave: TensorBoard, CSV, trainer_state.json, MLflow, W&B offline,\n"
                    "printed output; what a folder holds that is not a log is skipped and said): runs\n"
                    "already finished, runs in progress (history first, then live) and runs that start\n"
                    "later. With --listen, hooks can also stream to this process over TCP or a Unix\n"
                    "socket (one SSH tunnel is enough); a late start still gets the whole history.\n"
                    "With --once, print each run's status and last values and exit.",
        epilog="examples:\n"
               "  tui-monitor watch runs/                     follow a folder of runs\n"
               "  tui-monitor watch --once runs/              print a table of the runs and exit\n"
               "  tui-monitor watch --listen 127.0.0.1:7007   hooks send with init(..., to=\"127.0.0.1:7007\")\n"
               "  tui-monitor watch --listen unix:/tmp/tm.sock runs/\n"
               "  tui-monitor watch --listen 0.0.0.0:7007 --token-file ~/.tm-token   hooks: TUI_MONITOR_TOKEN_FILE\n"
               "  ssh -R 7007:127.0.0.1:7007 gpu-box          let a remote job reach your laptop\n"
               "  tui-monitor watch --poll /nfs/runs/         force polling (auto-detected on NFS, Lustre, sshfs)\n"
               "  tui-monitor watch tb_logs/ lightning_logs/  TensorBoard event files, CSV logs\n"
               "  tui-monitor watch slurm-1234.out            a job's printed output: progress lines become metrics\n"
               "  python train.py | tee log.txt | tui-monitor watch -\n"
               "  tui-monitor watch --task classification --num-classes 10 --baseline linear runs/\n"
               "  tui-monitor watch runs/ --notify 'notify-send \"$TUI_MONITOR_TITLE\" \"$TUI_MONITOR_MESSAGE\"'")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="stream files or folders (default: runs/ if it exists); TensorBoard event files and CSV "
                        "logs are found in folders; a text log named here is parsed; - reads standard input")
    p.add_argument("--parse-regex", action="append", metavar="REGEX", default=[],
                   help="for text logs: a Python regex whose named groups are metrics (and step, split), "
                        "e.g. 'it (?P<step>\\d+) l=(?P<loss>\\S+)'; tried before the built-in patterns")
    _add_live_options(p)
    p.add_argument("--once", action="store_true", help="print the runs as a table and exit (no TUI)")
    _add_diagnosis_options(p)
    p.add_argument("--no-bell", action="store_true",
                   help="no terminal bell and no desktop notification (OSC 9 / OSC 777, where the terminal has one) "
                        "on a new critical finding; n in the TUI turns them on and off")
    _add_notify_options(p, "watch")
    p.set_defaults(func=_command("watch"))


def _add_diagnosis_options(p) -> None:
    """What the diagnosis needs to be told: one set for diagnose and watch."""
    p.add_argument("--baseline", metavar="RUN", help="run name or id to compare the other runs of the same data against")
    p.add_argument("--task", choices=["classification", "regression"],
                   help="the task, for the trivial loss (overrides the runs' config)")
    p.add_argument("--num-classes", type=int, metavar="C", help="classes, for --task classification (ln C)")
    p.add_argument("--target-var", type=float, metavar="V", help="target variance, for --task regression")


def _positive_seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not s > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return s


def _add_diagnose(sub) -> None:
    p = sub.add_parser(
        "diagnose", help="say why runs are not working (findings of the diagnostic method)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read runs as `watch --once` does (stream files, TensorBoard event files, CSV logs and\n"
                    "the other formats of README's \"Already using something else?\", found recursively in\n"
                    "folders; text logs named here; - for standard input) and print the findings of the\n"
                    "diagnostic method (docs/diagnosis.md): model bias, optimization, overfitting, mismatch,\n"
                    "divergence, with evidence, confidence and advice; then each run's decision path and any\n"
                    "cross-validation summary.\n"
                    "\n"
                    "With --follow there is no report and no TUI: runs are followed live as `watch` follows\n"
                    "them (files, folders, - for standard input, --listen), and each finding is printed as it\n"
                    "is raised, changed or retracted, with runs as they start, go silent and end: one line of\n"
                    "text each, or one JSON object per line with --json. For a tmux pane, a log file, a CI\n"
                    "step or a pipe into other tools. --notify CMD runs your command for new findings and\n"
                    "for runs that end (see the README's recipes).",
        epilog="examples:\n"
               "  tui-monitor diagnose runs/\n"
               "  tui-monitor diagnose --baseline linear runs/*.jsonl\n"
               "  tui-monitor diagnose lightning_logs/ tb_logs/ slurm-1234.out\n"
               "  tui-monitor diagnose --task classification --num-classes 10 --json runs/ | jq .findings\n"
               "  tui-monitor diagnose --follow runs/                      print findings as they come\n"
               "  tui-monitor diagnose --follow --json runs/ | jq 'select(.type == \"finding\")'\n"
               "  tui-monitor diagnose --follow --until-done runs/         a CI step: wait for the runs, then exit\n"
               "  tui-monitor diagnose --follow --listen 127.0.0.1:7007    hooks stream here (TUI_MONITOR_TO)\n"
               "  tui-monitor diagnose --follow runs/ --notify 'notify-send \"$TUI_MONITOR_TITLE\" \"$TUI_MONITOR_MESSAGE\"'\n"
               "  tui-monitor diagnose --follow runs/ --notify-on warning --notify 'mail -s \"$TUI_MONITOR_TITLE\" me@example.org'\n"
               "exit status: 0 nothing at warning level or above, 1 there is, 2 usage or input error\n"
               "(a path that yields no run is an input error);\n"
               "with --follow --until-done: 0 every run finished and nothing at warning level or above\n"
               "stands, 1 something does or a run crashed, was interrupted or stopped (no end record,\n"
               "nothing heard for a day); 130 after Ctrl+C, 143 after SIGTERM")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="stream files or folders; TensorBoard event files, CSV logs and the other known formats "
                        "are found in folders; a text log named here is parsed; - reads standard input; "
                        "with --follow the default is runs/")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON (docs/diagnosis.schema.json); with --follow, one JSON object "
                        "per event and line")
    p.add_argument("--parse-regex", action="append", metavar="REGEX", default=[],
                   help="for text logs: a Python regex whose named groups are metrics (and step, split); "
                        "tried before the built-in patterns")
    _add_diagnosis_options(p)
    f = p.add_argument_group("follow mode (no TUI, runs until Ctrl+C)")
    f.add_argument("--follow", action="store_true",
                   help="follow the runs live and print each finding as it is raised, changed or retracted, and "
                        "each run as it starts, goes silent and ends")
    f.add_argument("--until-done", action="store_true",
                   help="stop once every run has ended (finished, crashed, interrupted) or stopped (no end record, "
                        "nothing heard for a day; a silent run has not) "
                        "and exit 0 if every run finished with nothing at warning level or above, else 1")
    _add_live_options(f)
    _add_notify_options(p, "diagnose --follow")
    p.set_defaults(func=_command("diagnose"))


def _add_live_options(p) -> None:
    """How runs are followed live: one set for watch and diagnose --follow."""
    p.add_argument("--listen", metavar="ADDR",
                   help="also accept hook connections at HOST:PORT or unix:/PATH (loopback unless a token is set)")
    p.add_argument("--token-file", metavar="FILE",
                   help="a file (chmod 600) holding the secret hooks must prove they know, as they hold it in "
                        "TUI_MONITOR_TOKEN or TUI_MONITOR_TOKEN_FILE; default: $TUI_MONITOR_TOKEN. Required off "
                        "loopback. Never sent: each side proves it knows it")
    p.add_argument("--token", help=argparse.SUPPRESS)  # removed: a token in argv is shown to every user by ps
    p.add_argument("--poll", action="store_true",
                   help="poll files instead of relying on filesystem events")
    p.add_argument("--silent-after", type=_positive_seconds, default=30.0, metavar="S",
                   help="call a running run silent after S seconds without a record (default 30; raise it "
                        "for steps slower than that)")


def _add_notify_options(p, where: str) -> None:
    """--notify and its companions: one set for watch and diagnose --follow."""
    import textwrap

    g = p.add_argument_group("notifications", textwrap.fill(
        "CMD is your own shell command, run with /bin/sh -c as you typed it, once per new finding at or above "
        "--notify-on and once per run that ends; what came together (a 64-rank job going down) is one "
        "notification. It reads the notification as one JSON object on standard input (title, message, "
        "events), and finds plain fields in its environment: TUI_MONITOR_TITLE, _MESSAGE, _SEVERITY, _KIND, "
        "_SYMPTOM, _RUN, _RUN_ID, _STEP, _STATUS, _EVENT (finding, run_ended, burst), _COUNT. Nothing from a "
        "stream is ever put into the command line; quote the variables (\"$TUI_MONITOR_RUN\"). A finding pages "
        "once, however often it comes back; what was there when %s started pages nobody." % where, 92))
    g.add_argument("--notify", metavar="CMD", help="run CMD for each new finding and each run that ends")
    g.add_argument("--notify-on", choices=["warning", "critical"], metavar="LEVEL",
                   help="the least severity that notifies: warning or critical (default critical: a non-finite "
                        "or exploding loss, a crashed or hung rank)")
    g.add_argument("--notify-timeout", type=float, metavar="S",
                   help="kill CMD (and what it started) after S seconds (default 30)")


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
    p.set_defaults(func=_command("demo"))


#: Every subcommand, by its adder.
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


if __name__ == "__main__":
    sys.exit(main())
