"""The subcommands' implementations, one module each, with a ``run(args) ->
int``. :mod:`tui_monitor.cli` declares the arguments and imports a module only
when its command runs, so ``--help`` and ``version`` stay light."""

PROG = "tui-monitor"


def task_override(args) -> "dict | None":
    """The task the diagnosis is told on the command line (``--task``,
    ``--num-classes``, ``--target-var``), or None to take each run's config."""
    if args.task or args.num_classes or args.target_var:
        return {"task": args.task, "num_classes": args.num_classes, "target_var": args.target_var}
    return None
