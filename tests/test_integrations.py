"""Framework adapters and the frameworks' own loggers, with the real libraries:
a tiny Lightning Trainer.fit logged by our logger, by Lightning's CSVLogger
and by its TensorBoardLogger, and a tiny transformers.Trainer with our
callback (its printed output also read by the text parser), each read back by
the monitor."""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

from conftest import only_run
from source_helpers import read, values

torch = pytest.importorskip("torch", reason="torch is not installed")


# ---------------------------------------------------------------- Lightning

def _fit(tmp_path, logger, steps=6, **trainer_options):
    pl = pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")

    class Tiny(pl.LightningModule):
        def __init__(self, lr=0.05, hidden=8):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
            self.logged = {"train_loss": {}, "val_loss": {}}

        def training_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=False)
            self.logged["train_loss"][self.global_step] = loss.item()
            return loss

        def validation_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("val_loss", loss, on_epoch=True)
            self.logged["val_loss"].setdefault(self.global_step, []).append(loss.item())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 4, generator=g)
    ds = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    train = torch.utils.data.DataLoader(ds, batch_size=8)
    val = torch.utils.data.DataLoader(ds, batch_size=24)
    model = Tiny()
    trainer = pl.Trainer(max_steps=steps, max_epochs=2, logger=logger, log_every_n_steps=1, accelerator="cpu",
                         devices=1, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                         num_sanity_val_steps=0, default_root_dir=str(tmp_path), **trainer_options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, train, val)
    return model


def _check_lightning_run(run, model, exact=True):
    steps, vals = values(run, "loss", "train")
    want = model.logged["train_loss"]
    assert steps == sorted(want) and len(steps) == 6
    conv = (lambda v: v) if exact else (lambda v: float(np.float32(v)))
    assert vals == [conv(want[s]) for s in steps]
    vsteps, vvals = values(run, "loss", "val")
    assert vsteps == [2, 5]  # after each epoch of 3 batches (global_step is the count of steps done)
    assert [round(v, 5) for v in vvals] == [round(conv(model.logged["val_loss"][s][0]), 5) for s in (3, 6)]


def test_lightning_with_our_logger(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from tui_monitor.integrations.lightning import TuiMonitorLogger
    model = _fit(tmp_path, TuiMonitorLogger(dir=str(tmp_path / "runs"), name="tiny"))
    run = only_run(read(tmp_path / "runs"))
    assert run.name == "tiny" and run.status == "finished"
    params = sum(p.numel() for p in model.parameters())
    assert run.model["params"] == params == 4 * 8 + 8 + 8 + 1 and run.model["depth"] == 2
    assert run.config == {"lr": 0.05, "hidden": 8}
    steps, vals = values(run, "loss", "train")
    assert vals == [model.logged["train_loss"][s] for s in steps] and len(steps) == 6
    assert values(run, "loss", "val")[0] == [2, 5]  # the step Lightning passes its loggers (as in its CSV)


def test_lightning_callback_with_another_logger(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from tui_monitor.integrations.lightning import TuiMonitorCallback
    import lightning.pytorch as pl
    cb = TuiMonitorCallback(dir=str(tmp_path / "runs"))

    class WithCallback(pl.Trainer):
        pass

    orig = pl.Trainer.__init__

    def init(self, *a, **k):
        k["callbacks"] = [cb]
        orig(self, *a, **k)

    WithCallback.__init__ = init
    old, pl.Trainer = pl.Trainer, WithCallback
    try:
        model = _fit(tmp_path, False)
    finally:
        pl.Trainer = old
    run = only_run(read(tmp_path / "runs"))
    assert run.name == "Tiny" and run.model["params"] == sum(p.numel() for p in model.parameters())
    steps, vals = values(run, "loss", "train")
    assert len(steps) >= 5 and all(vals[i] == model.logged["train_loss"][s - 1] for i, s in enumerate(steps))
    assert len(values(run, "loss", "val")[0]) == 2


def test_lightning_callback_logs_each_step_once_under_gradient_accumulation(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from tui_monitor.integrations.lightning import TuiMonitorCallback
    cb = TuiMonitorCallback(dir=str(tmp_path / "runs"))
    model = _fit(tmp_path, False, steps=3, accumulate_grad_batches=2, callbacks=[cb])
    steps, _ = values(only_run(read(tmp_path / "runs")), "loss", "train")
    assert model.global_step == 3 and steps == [1, 2, 3]  # once per optimizer step, after it, not per micro-batch


def test_lightning_csvlogger_read_back(tmp_path):
    pl = pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from lightning.pytorch.loggers import CSVLogger
    model = _fit(tmp_path, CSVLogger(str(tmp_path / "logs"), name="lightning_logs"))
    assert (tmp_path / "logs" / "lightning_logs" / "version_0" / "metrics.csv").exists()
    run = only_run(read(tmp_path / "logs"))
    assert run.name == "lightning_logs/version_0" and run.config == {"lr": 0.05, "hidden": 8}
    _check_lightning_run(run, model)


def test_lightning_tensorboardlogger_read_back(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    pytest.importorskip("tensorboard", reason="the integrations extra (tensorboard) is not installed")
    from lightning.pytorch.loggers import TensorBoardLogger
    model = _fit(tmp_path, TensorBoardLogger(str(tmp_path / "tb"), name="lightning_logs"))
    ing = read(tmp_path / "tb")
    run = only_run(ing)
    assert run.name == "lightning_logs/version_0" and run.config == {"lr": 0.05, "hidden": 8}
    _check_lightning_run(run, model, exact=False)  # TensorBoard keeps float32
    assert not list(ing.problems)


# ---------------------------------------------------------------- Hugging Face

def test_transformers_trainer_with_our_callback_and_its_printed_output(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers", reason="the integrations extra (transformers) is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("WANDB_DISABLED", "true")
    from tui_monitor.integrations.transformers import TuiMonitorCallback

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)

    class Tokens(torch.utils.data.Dataset):
        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randint(0, 64, (n, 12), generator=g)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"input_ids": self.x[i], "labels": self.x[i]}

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=8, per_device_train_batch_size=4, per_device_eval_batch_size=8,
        learning_rate=1e-3, logging_steps=2, eval_strategy="steps", eval_steps=4, save_strategy="no",
        report_to=[], use_cpu=True, disable_tqdm=False, max_grad_norm=1.0, dataloader_num_workers=0, seed=0)
    cb = TuiMonitorCallback(dir=str(tmp_path / "runs"), name="tiny-gpt2")
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(32, 1), eval_dataset=Tokens(8, 2),
                                   callbacks=[cb])
    out = io.StringIO()  # python train.py 2>&1 | tee hf.log: both streams, interleaved
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    history = trainer.state.log_history
    train_logs = [h for h in history if "loss" in h and "train_runtime" not in h]
    eval_logs = [h for h in history if "eval_loss" in h]
    assert len(train_logs) == 4 and len(eval_logs) == 2

    run = only_run(read(tmp_path / "runs"))
    assert run.name == "tiny-gpt2" and run.status == "finished"
    assert run.model["params"] == sum(p.numel() for p in model.parameters())
    assert run.config["learning_rate"] == 1e-3 and run.config["model"]["n_embd"] == 16
    assert values(run, "loss") == ([h["step"] for h in train_logs], [h["loss"] for h in train_logs])
    assert values(run, "loss", "val") == ([h["step"] for h in eval_logs], [h["eval_loss"] for h in eval_logs])
    assert values(run, "learning_rate")[1] == [h["learning_rate"] for h in train_logs]
    assert values(run, "grad_norm")[1] == pytest.approx([h["grad_norm"] for h in train_logs])
    assert ("train", "train_loss") not in run.series and ("train", "runtime") not in run.series

    # The same run's printed output, captured, through the text parser.
    printed = tmp_path / "hf.log"
    printed.write_text(out.getvalue())
    text_run = only_run(read_named(printed))
    steps, losses = values(text_run, "loss")
    assert losses == pytest.approx([h["loss"] for h in train_logs], rel=1e-3)
    assert steps == [h["step"] for h in train_logs]  # the progress bar's count, redrawn after each dict
    assert values(text_run, "loss", "val")[1] == pytest.approx([h["eval_loss"] for h in eval_logs], rel=1e-3)


def read_named(path):
    return read(path)


def test_plain_torch_helper_only_rank_zero_writes(tmp_path, monkeypatch):
    from tui_monitor.integrations.torch import NullRun, monitor
    model = torch.nn.Linear(3, 2)
    monkeypatch.setenv("RANK", "1")
    assert isinstance(monitor(model, dir=str(tmp_path / "r1")), NullRun)
    assert not (tmp_path / "r1").exists()
    run = monitor(model, dir=str(tmp_path / "all"), all_ranks=True)
    run.log({"loss": torch.tensor(1.5)}, step=0)
    run.close()
    monkeypatch.setenv("RANK", "0")
    run = monitor(model, name="lin", dir=str(tmp_path / "r0"), config={"lr": 0.1})
    for step in range(3):
        run.log({"loss": torch.tensor(1.0 / (step + 1))}, step=step)
    run.close()
    r = only_run(read(tmp_path / "r0"))
    assert r.name == "lin" and r.model["params"] == 8 and values(r, "loss")[0] == [0, 1, 2]
    assert only_run(read(tmp_path / "all")).rank == 1


LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "GLOBAL_RANK", "TORCHELASTIC_RUN_ID", "MASTER_ADDR",
                 "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_ID", "SLURM_STEP_ID",
                 "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_RANK",
                 "PMI_SIZE", "TUI_MONITOR_RUN_ID", "TUI_MONITOR_RANKS")


def test_plain_torch_helper_under_slurm_without_world_size(tmp_path, monkeypatch):
    """srun sets SLURM_PROCID/SLURM_NTASKS, not RANK/WORLD_SIZE: the helper's
    run has the launcher's rank and world size, the job's run id and its own
    -rankN stream (it was world size 1, one file name for every rank)."""
    from tui_monitor.integrations.torch import NullRun, monitor
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    model = torch.nn.Linear(3, 2)
    assert isinstance(monitor(model, dir=str(tmp_path / "zero")), NullRun)   # rank 1 does not write by default
    run = monitor(model, name="lin", dir=str(tmp_path / "all"), all_ranks=True)
    run.log({"loss": torch.tensor(0.5), "acc": 0.9}, step=0)
    run.close()
    assert (run.rank, run.world_size, run.local_rank, run.run_id) == (1, 2, 1, "slurm-4242")
    assert run.path.endswith("-rank1.jsonl")
    r = only_run(read(tmp_path / "all"))
    assert (r.rank, r.world_size) == (1, 2) and values(r, "loss") == ([0], [0.5])
    assert ("train", "acc") not in r.series          # a rank other than 0 writes the small stream


def test_launcher_rank_without_its_world_size(monkeypatch):
    from tui_monitor import hook
    from tui_monitor.integrations._common import global_rank
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    assert hook.distributed_info() == (0, None, 1, None) and global_rank() == 0
    monkeypatch.setenv("GLOBAL_RANK", "3")                      # Lightning's
    assert hook.distributed_info() == (3, None, 1, None) and global_rank() == 3
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert hook.distributed_info() == (3, None, 4, None)
    monkeypatch.setenv("RANK", "2")                             # torchrun's wins
    assert hook.distributed_info()[0] == global_rank() == 2
    for var in ("RANK", "GLOBAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "5")             # mpirun, no size variable
    assert hook.distributed_info() == (5, None, 1, None) and global_rank() == 5
