"""``tui-monitor watch``: follow runs live in the TUI, or print them once."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from ..hook import shared_token
from ..safe_text import clean
from . import PROG, task_override


def listen_token(args: argparse.Namespace) -> Optional[bytes]:
    """The listener's token: the content of ``--token-file``, else
    ``$TUI_MONITOR_TOKEN``; None without one. Raises ValueError (saying what
    to do) for ``--token``, a token file other users can read, or one without
    ``--listen``."""
    if getattr(args, "token", None) is not None:
        raise ValueError("--token is no longer accepted: a token on the command line is shown to every user of "
                         "this machine by ps. Put it in a file only you can read and pass --token-file FILE, or set "
                         "TUI_MONITOR_TOKEN; and take the token you typed as seen: choose a new one")
    path = getattr(args, "token_file", None)
    if not path:
        return shared_token(os.environ.get("TUI_MONITOR_TOKEN"))
    if not args.listen:
        raise ValueError("--token-file is the secret of --listen: give --listen ADDR too")
    mode = os.stat(path).st_mode
    if mode & 0o077:
        raise ValueError(f"the token file {path} can be read by other users (mode {mode & 0o777:o}): chmod 600 {path}")
    return shared_token(token_file=path)


def run(args: argparse.Namespace) -> int:
    paths = list(args.paths)
    stdin = "-" in paths
    paths = [p for p in paths if p != "-"]
    from ..sources.text import attach, compile_patterns, reattach_tty
    try:
        patterns = compile_patterns(args.parse_regex)
    except ValueError as e:
        print(f"{PROG} watch: {clean(e)}", file=sys.stderr)
        return 2
    try:
        token = listen_token(args)
    except (OSError, ValueError) as e:
        print(f"{PROG} watch: {clean(e)}", file=sys.stderr)
        return 2
    if not paths and not args.listen and not stdin:
        if os.path.isdir("runs"):
            paths = ["runs"]
        else:
            print(f"{PROG} watch: give a file or folder to follow, or --listen ADDR "
                  f"(there is no runs/ folder here)", file=sys.stderr)
            return 2
    from ..notify import options_error
    error = options_error(args) or ("--notify follows runs live: it cannot be used with --once"
                                    if args.once and args.notify else None)
    if error:
        print(f"{PROG} watch: {clean(error)}", file=sys.stderr)
        return 2
    if args.once and args.listen:
        print(f"{PROG} watch: --once reads files; it cannot be used with --listen", file=sys.stderr)
        return 2
    missing = [p for p in paths if not os.path.exists(p)]
    if args.once:
        if missing:
            print(f"{PROG} watch: no such file or folder: {clean(missing[0])}", file=sys.stderr)
            return 1
        from ..sources import open_ingest
        from ..summary import problem_lines, runs_table

        store, ingest = open_ingest(paths, poll=args.poll or None, start=False, silent_after=args.silent_after)
        attach(ingest, patterns, stdin)
        ingest.read_all()
        if not store.runs:
            print(f"no runs found in {', '.join(clean(p) for p in paths)}")
        else:
            print(runs_table(store))
        for line in problem_lines(*ingest.recent_problems()):
            print(line, file=sys.stderr)
        return 0
    try:
        from ..sources import open_ingest
        store, ingest = open_ingest(paths, listen=args.listen, token=token, poll=args.poll or None,
                                    start=False, silent_after=args.silent_after)
        attach(ingest, patterns, stdin)
        ingest.start()
    except (OSError, ValueError) as e:
        print(f"{PROG} watch: {clean(e)}", file=sys.stderr)
        return 2
    try:
        from ..tui import run_app
    except ImportError as e:
        ingest.stop()
        print(f"{PROG} watch: the TUI is not available ({clean(e)}); use --once", file=sys.stderr)
        return 1
    if stdin and not reattach_tty():
        ingest.stop()
        print(f"{PROG} watch: reading standard input, and there is no terminal for the TUI; use --once",
              file=sys.stderr)
        return 1
    from ..notify import finish, from_args
    failures: list = []  # until the app shows them; said again when it closes
    notifier = from_args(args, on_failure=failures.append)
    try:
        return run_app(store, ingest, baseline=args.baseline, task=task_override(args),
                       silent_after=args.silent_after, notifier=notifier, bell=not args.no_bell) or 0
    finally:
        ingest.stop()
        if notifier is not None:
            finish(notifier, lambda text: print(f"{PROG} watch: {text}", file=sys.stderr))

