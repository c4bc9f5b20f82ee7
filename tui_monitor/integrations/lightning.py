"""Lightning: ``Trainer(logger=TuiMonitorLogger())``, or keep your logger and
add ``callbacks=[TuiMonitorCallback()]``.

Works with ``lightning`` (``lightning.pytorch``) or the older
``pytorch_lightning`` package, whichever is installed. The logger gets what
``self.log(...)`` sends (``train_loss``, ``val_loss``, ...: the monitor infers
splits from the names), the hyperparameters as the run's config and, through
``log_graph``, the model (its flexibility; gradient norms every
``watch_every`` backward passes). It writes on global rank 0 only, unless
``all_ranks=True``.
"""
from __future__ import annotations

from argparse import Namespace
from typing import Any, Dict, Mapping, Optional

try:
    import lightning.pytorch as pl
    from lightning.pytorch.loggers.logger import Logger
except ImportError:  # pragma: no cover - the older package name
    import pytorch_lightning as pl  # type: ignore
    from pytorch_lightning.loggers.logger import Logger  # type: ignore

from ._common import NullRun, should_log, start

__all__ = ["TuiMonitorLogger", "TuiMonitorCallback"]


def _numbers(metrics: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in metrics.items() if not isinstance(v, str)}


class TuiMonitorLogger(Logger):
    """A Lightning logger writing a tui-monitor stream.

    ``name`` names the run (default: the LightningModule's class name);
    ``watch_every`` (default 50, 0 = off) is how often gradients are read;
    other keyword arguments go to :func:`tui_monitor.hook.init` (``dir``,
    ``to``, ``tags``, ...)."""

    def __init__(self, name: Optional[str] = None, all_ranks: bool = False, watch_every: int = 50, **options: Any):
        super().__init__()
        self._name = name
        self.all_ranks = all_ranks
        self.watch_every = watch_every
        self.options = options
        self.config: Dict[str, Any] = {}
        self.run: Any = None
        self._has_model = False

    # -- Logger's interface -----------------------------------------------------

    @property
    def name(self) -> str:
        return self._name or "tui-monitor"

    @property
    def version(self) -> str:
        return self.run.run_id if getattr(self.run, "run_id", None) else "0"

    @property
    def experiment(self) -> Any:
        """The hook's run (``.log(values, step=)``) once the fit started
        (Lightning looks at this early: it must not start the run before the
        hyperparameters and the model are known)."""
        return self.run if self.run is not None else NullRun()

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(params, Namespace):
            params = vars(params)
        if isinstance(params, Mapping):
            self.config.update(params)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        if self.run is None:
            self._ensure(model)
        elif not self._has_model and model is not None:
            self.run.watch(model, every=self.watch_every)  # started early: record the model now
        self._has_model = self._has_model or model is not None

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        # self.log(..., on_step=True, on_epoch=True) sends train_loss_step and train_loss_epoch:
        # the per-step value is the metric itself (train_loss), the epoch's mean keeps its suffix.
        values = {(k[:-5] if k.endswith("_step") and k != "global_step" else k): v
                  for k, v in _numbers(metrics).items()}
        if values:
            self._ensure(None).log(values, step=step)

    def save(self) -> None:
        if self.run is not None:
            self.run.flush()

    def finalize(self, status: str) -> None:
        if self.run is not None and not isinstance(self.run, NullRun):
            self.run.close(status={"success": "finished", "failed": "crashed"}.get(status, "finished"))

    # -- internals -----------------------------------------------------------------

    def _ensure(self, model: Any) -> Any:
        if self.run is None:
            if not should_log(self.all_ranks):
                self.run = NullRun()
            else:
                name = self._name or (type(model).__name__ if model is not None else None)
                self.run = start(name, dict(self.config), model, {"watch_every": self.watch_every, **self.options})
        return self.run


class TuiMonitorCallback(pl.Callback):
    """For a run that keeps its own logger: records the model at fit start and
    the metrics Lightning collects (``trainer.callback_metrics``): training
    values every ``log_every_n_steps`` steps, validation values after each
    validation epoch."""

    def __init__(self, name: Optional[str] = None, all_ranks: bool = False, watch_every: int = 50, **options: Any):
        self.name, self.all_ranks, self.watch_every, self.options = name, all_ranks, watch_every, options
        self.run: Any = None
        self._last_step = 0  # the global step after the last batch (none made yet)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._last_step = int(getattr(trainer, "global_step", 0) or 0)  # a resumed fit starts past 0
        if self.run is not None:
            return
        if not (self.all_ranks or trainer.global_rank == 0):
            self.run = NullRun()
            return
        config = dict(getattr(pl_module, "hparams", {}) or {})
        self.run = start(self.name or type(pl_module).__name__, config, pl_module,
                         {"watch_every": self.watch_every, **self.options})

    def _metrics(self, trainer: Any, val: bool) -> Dict[str, Any]:
        out = {}
        for k, v in trainer.callback_metrics.items():
            if k.startswith(("val", "valid", "eval")) == val and not k.startswith("test"):
                out[k] = v.detach().clone() if hasattr(v, "detach") else v
        return out

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        every = max(1, int(getattr(trainer, "log_every_n_steps", 50) or 1))
        step = trainer.global_step  # already counts the optimizer step this batch made, if it made one
        # under gradient accumulation every micro-batch ends here: log on the one
        # that made an optimizer step (the step moved), as without accumulation
        stepped, self._last_step = step != self._last_step, step
        if self.run is None or not stepped or step % every:
            return
        values = self._metrics(trainer, val=False)
        if not values and isinstance(outputs, Mapping) and "loss" in outputs:
            values = {"loss": outputs["loss"].detach()}
        if values:
            self.run.log(values, step=trainer.global_step)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is None or trainer.sanity_checking:
            return
        values = self._metrics(trainer, val=True)
        if values:
            self.run.log(values, step=trainer.global_step)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is not None:
            self.run.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.run is not None and not isinstance(self.run, NullRun):
            self.run.close(status="crashed", error=exception)
