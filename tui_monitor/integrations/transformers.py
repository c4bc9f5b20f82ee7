"""Hugging Face: ``Trainer(..., callbacks=[TuiMonitorCallback()])``.

Records what the ``Trainer`` logs at ``global_step``: the training loss,
learning rate and gradient norm (``grad_norm``, where the Trainer computes
it: whenever gradient clipping is on, the default), the evaluation values
(``eval_loss``, ``eval_accuracy``, ...: the val split), and the epoch; the
end-of-training summary (``train_runtime``, ...) is left out. The model's
flexibility comes from the model the Trainer trains and the run's config from
``TrainingArguments`` (the main settings) and the model's config. Only the
main process (``state.is_world_process_zero``) writes, unless
``all_ranks=True``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from transformers import TrainerCallback

from ._common import NullRun, start

__all__ = ["TuiMonitorCallback"]

_ARGS = ("learning_rate", "weight_decay", "per_device_train_batch_size", "per_device_eval_batch_size",
         "gradient_accumulation_steps", "num_train_epochs", "max_steps", "warmup_steps", "warmup_ratio",
         "lr_scheduler_type", "max_grad_norm", "seed", "optim", "fp16", "bf16")
_SUMMARY = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss")


class TuiMonitorCallback(TrainerCallback):
    """A ``transformers.TrainerCallback`` writing a tui-monitor stream.
    ``name`` names the run (default: the model's class name); other keyword
    arguments go to :func:`tui_monitor.hook.init`."""

    def __init__(self, name: Optional[str] = None, all_ranks: bool = False, watch_every: int = 50,
                 config: Optional[Dict[str, Any]] = None, **options: Any):
        self.name, self.all_ranks, self.watch_every = name, all_ranks, watch_every
        self.extra_config = dict(config or {})
        self.options = options
        self.run: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.run is not None:
            return
        if not (self.all_ranks or state.is_world_process_zero):
            self.run = NullRun()
            return
        config: Dict[str, Any] = {k: getattr(args, k) for k in _ARGS if hasattr(args, k)}
        model_config = getattr(model, "config", None)
        if model_config is not None and hasattr(model_config, "to_dict"):
            try:
                config["model"] = model_config.to_dict()
                num_labels = getattr(model_config, "num_labels", None)
                if num_labels and getattr(model_config, "problem_type", None) != "regression":
                    config.setdefault("num_labels", num_labels)
            except Exception:  # noqa: BLE001
                pass
        config.update(self.extra_config)
        name = self.name or (type(model).__name__ if model is not None else None)
        options = {"watch_every": self.watch_every, **self.options}
        self.run = start(name, config, model, options)

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        if self.run is None or not logs:
            return
        if "train_runtime" in logs:
            return  # the end-of-training summary, not a point on a curve
        values = {k: v for k, v in logs.items()
                  if k not in _SUMMARY and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if values:
            self.run.log(values, step=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.run is not None and not isinstance(self.run, NullRun):
            self.run.close()
