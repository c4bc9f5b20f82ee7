"""Real Keras (3, on the torch backend): its CSVLogger file and its printed
progress, read by the monitor with the values Keras itself reports."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import only_run
from source_helpers import read, values

import importlib.util

if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("keras and torch are in the integrations extra (Keras runs on the torch backend here)",
                allow_module_level=True)

FIT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    keras.utils.set_random_seed(0)
    x = np.random.rand(96, 4).astype("float32"); y = x.sum(1, keepdims=True)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    h = m.fit(x, y, epochs=4, batch_size=16, validation_split=0.25, verbose=int(sys.argv[2]),
              callbacks=[keras.callbacks.CSVLogger(sys.argv[1])])
    print("HISTORY " + json.dumps(h.history), file=sys.stderr)
""")


@pytest.fixture(scope="module")
def keras_runs(tmp_path_factory):
    out = {}
    for verbose in (1, 2):
        d = tmp_path_factory.mktemp(f"keras{verbose}")
        env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-c", FIT, str(d / "training.csv"), str(verbose)],
                              capture_output=True, text=True, env=env, timeout=180)
        assert proc.returncode == 0, proc.stderr[-2000:]
        history = json.loads(proc.stderr.split("HISTORY ", 1)[1].splitlines()[0])
        (d / "fit.out").write_text(proc.stdout)
        out[verbose] = (d, history)
    return out


@pytest.mark.parametrize("verbose", [1, 2])
def test_keras_printed_progress(keras_runs, verbose):
    d, history = keras_runs[verbose]
    run = only_run(read(d / "fit.out"))
    epochs = list(range(1, 5))
    for key, (split, metric) in {"loss": ("train", "loss"), "val_loss": ("val", "loss"),
                                 "mae": ("train", "mae"), "val_mae": ("val", "mae")}.items():
        steps, got = values(run, metric, split)
        assert steps == epochs
        assert got == pytest.approx(history[key], abs=5e-5)   # Keras prints 4 decimals


def test_keras_csvlogger(keras_runs):
    d, history = keras_runs[2]
    run = only_run(read(d / "training.csv"))
    assert values(run, "loss") == ([0, 1, 2, 3], pytest.approx(history["loss"], rel=1e-6))
    assert values(run, "loss", "val")[1] == pytest.approx(history["val_loss"], rel=1e-6)
