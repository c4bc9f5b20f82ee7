"""Real Keras (3, on the torch backend): its printed progress, its CSVLogger
file under the name Keras' docs give it (``training.log``), the history
saved with pandas as people do, and its TensorBoard callback's
``logs/train`` and ``logs/validation``, read by the monitor with the values
Keras itself reports."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ROOT, only_run
from source_helpers import read, values
from wild_logs import WILD, truth_of, write

if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("keras and torch are in the integrations extra (Keras runs on the torch backend here)",
                allow_module_level=True)

HAS_TF = importlib.util.find_spec("tensorflow") is not None
HAS_TF_KERAS = importlib.util.find_spec("tf_keras") is not None
HAS_PANDAS = importlib.util.find_spec("pandas") is not None

def _history(folder) -> dict:
    """What Keras reported, as ``History.history`` holds it, and ``evaluate()``'s dict under "evaluate"."""
    truth = truth_of(folder)
    history = {("val_" if key.startswith("val/") else "") + key.split("/", 1)[1]: [v for _, v in points]
               for key, points in truth["history"].items()}
    history["evaluate"] = {key.split("/", 1)[1]: points[0][1] for key, points in truth["evaluate"].items()}
    return history


@pytest.fixture(scope="module")
def keras_runs(tmp_path_factory):
    """Keras' own files, written by the writers of test_wild_logs (wild_logs.KERAS): verbose=1 printed
    alone, verbose=2 with the CSVLogger, the TensorBoard callback (with TensorFlow) and pandas' CSVs."""
    out = {}
    for verbose, name in ((1, "keras3-bar"), (2, "keras3")):
        wild = WILD[name]
        if verbose == 2 and not HAS_TF:
            wild = wild._replace(args=("2", "keras", "-"))
        folder = tmp_path_factory.mktemp(f"keras{verbose}") / name
        write(wild, folder, timeout=240)
        out[verbose] = (folder, _history(folder))
    return out


@pytest.mark.parametrize("verbose", [1, 2])
def test_keras_printed_progress(keras_runs, verbose):
    d, history = keras_runs[verbose]
    printed = (d / "fit.out").read_text()
    if verbose == 1:  # the epoch's last batch was printed before validation, without val_*
        plain = re.sub(r"\x1b\[[0-9;]*m|\b", "", printed)
        redraws = [line for line in re.split(r"[\r\n]", plain) if line.startswith("5/5")]
        assert len(redraws) >= 8 and sum("val_loss" not in line for line in redraws) >= 4
    run = only_run(read(d / "fit.out"))
    epochs = list(range(1, 5))
    for key, (split, metric) in {"loss": ("train", "loss"), "val_loss": ("val", "loss"),
                                 "mae": ("train", "mae"), "val_mae": ("val", "mae")}.items():
        steps, got = values(run, metric, split)
        assert steps == epochs
        assert got == pytest.approx(history[key], abs=5e-5)   # Keras prints 4 decimals
    # model.evaluate() after fit: its summary line is the test split, at the last epoch
    assert values(run, "loss", "test") == ([4], [pytest.approx(history["evaluate"]["loss"], abs=5e-5)])
    assert values(run, "mae", "test")[1] == [pytest.approx(history["evaluate"]["mae"], abs=5e-5)]
    assert sorted(key for key in run.series if key[0] == "test") == [("test", "loss"), ("test", "mae")]


def test_keras_csvlogger_found_by_its_content(keras_runs):
    d, history = keras_runs[2]
    ing = read(d / "project")
    runs = {os.path.basename(r.header["tags"]["path"]): r for r in ing.store.runs.values()
            if r.header["tags"]["source"] == "csv"}
    run = runs["training.log"]
    assert run.name == "project/training.log"
    assert values(run, "loss") == ([0, 1, 2, 3], pytest.approx(history["loss"], rel=1e-6))
    assert values(run, "loss", "val")[1] == pytest.approx(history["val_loss"], rel=1e-6)


@pytest.mark.skipif(not HAS_PANDAS, reason="pandas writes the history CSVs (in the integrations extra)")
@pytest.mark.parametrize("name", ["history.csv", "history_no_index.csv"])
def test_keras_history_saved_with_pandas(keras_runs, name):
    d, history = keras_runs[2]
    run = only_run(read(d / "project" / name))   # no epoch column: row i is epoch i
    assert values(run, "loss") == ([0, 1, 2, 3], pytest.approx(history["loss"], rel=1e-6))
    assert values(run, "mae", "val") == ([0, 1, 2, 3], pytest.approx(history["val_mae"], rel=1e-6))
    assert sorted(run.series) == [("train", "loss"), ("train", "mae"), ("val", "loss"), ("val", "mae")]


@pytest.mark.skipif(not HAS_TF, reason="Keras' TensorBoard callback writes with tf.summary (tensorflow-cpu, "
                                      "in the integrations extra)")
def test_keras_tensorboard_callback_is_one_run_with_its_validation_split(keras_runs):
    d, history = keras_runs[2]
    logs = d / "project" / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["train", "validation"]
    ing = read(logs)
    run = only_run(ing)
    assert run.name == "project/logs" and run.header["tags"]["source"] == "tensorboard"
    f32 = [float(np.float32(v)) for v in history["loss"]]
    assert values(run, "loss") == ([0, 1, 2, 3], f32)
    assert values(run, "loss", "val") == ([0, 1, 2, 3], [float(np.float32(v)) for v in history["val_loss"]])
    assert values(run, "mae", "val")[1] == [float(np.float32(v)) for v in history["val_mae"]]
    assert ("train", "evaluation_loss_vs_iterations") not in run.series
    assert not list(ing.problems)


def test_cat_reads_the_csvlogger_file_as_csv(keras_runs):
    d, history = keras_runs[2]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tui_monitor", "cat", "--json", str(d / "project" / "training.log")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["type"] for r in records] == ["run"] + ["metrics"] * 4
    assert [r["values"]["val_loss"] for r in records[1:]] == pytest.approx(history["val_loss"], rel=1e-6)


#: Keras 2 (tf_keras, as ``tf.keras`` was before TensorFlow 2.16): the model's
#: summary, then ``fit`` printed with verbose=1 (a bar whose epoch's last batch
#: is drawn ``- ETA: 0s`` before validation runs) into fit1.out and verbose=2
#: (``5/5 - 0s - loss: ... - 36ms/epoch - 7ms/step``) into fit2.out.
KERAS2 = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    import tf_keras as keras
    out = sys.argv[1]
    keras.utils.set_random_seed(0)
    x = np.random.rand(96, 4).astype("float32"); y = x.sum(1, keepdims=True)

    class SlowBatches(keras.callbacks.Callback):  # slower than the bar's 50 ms refresh: every batch drawn
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.06)

    histories = {}
    for verbose in (1, 2):
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
        m.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        with open(os.path.join(out, f"fit{verbose}.out"), "w") as f:
            sys.stdout = f
            m.summary()
            h = m.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=verbose, callbacks=[SlowBatches()])
            sys.stdout = sys.__stdout__
        histories[verbose] = h.history
    print("HISTORY " + json.dumps(histories), file=sys.stderr)
""")


@pytest.mark.skipif(not HAS_TF_KERAS, reason="Keras 2 is tf_keras (in the integrations extra)")
def test_keras2_printed_progress(tmp_path):
    """Keras 2's printed fit, both verbosities, after its model summary: each
    epoch's train and val values as Keras reports them, at epochs 1..3, and
    nothing else (no ``ETA`` metric, no test split)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", KERAS2, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    histories = json.loads(proc.stderr.split("HISTORY ", 1)[1].splitlines()[0])
    assert "ETA: 0s" in (tmp_path / "fit1.out").read_text()   # the line that used to make val a test split
    for verbose in ("1", "2"):
        printed = (tmp_path / f"fit{verbose}.out").read_text()
        assert "Total params" in printed and "Epoch 3/3" in printed
        run = only_run(read(tmp_path / f"fit{verbose}.out"))
        history = histories[verbose]
        assert sorted(run.series) == [("train", "loss"), ("train", "mae"), ("val", "loss"), ("val", "mae")]
        for key, (split, metric) in {"loss": ("train", "loss"), "val_loss": ("val", "loss"),
                                     "mae": ("train", "mae"), "val_mae": ("val", "mae")}.items():
            assert values(run, metric, split) == ([1, 2, 3], pytest.approx(history[key], abs=5e-5))
