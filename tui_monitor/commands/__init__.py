"""The subcommands' implementations, one module each, with a ``run(args) ->
int``. :mod:`tui_monitor.cli` declares the arguments and imports a module only
when its command runs, so ``--help`` and ``version`` stay light."""

PROG = "tui-monitor"
