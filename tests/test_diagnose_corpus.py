"""The labelled corpus end to end: real tiny PyTorch runs (generated once per
test session), replayed live through the store and the engine."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the corpus trains real models: torch is the demo extra")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import diagnosis as bench  # noqa: E402

from tui_monitor.scenarios import HEALTHY, SCENARIOS  # noqa: E402
from tui_monitor.scenarios.corpus import generate, load_manifest  # noqa: E402

SEEDS = (0, 1)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    generate(d, seeds=SEEDS, workers=2)
    return load_manifest(d)


@pytest.fixture(scope="session")
def replayed(corpus):
    results = {}
    for exp in bench.experiments(corpus):
        results.update(bench.replay(exp, every=3))
    return results


@pytest.mark.timeout(240)
def test_corpus_has_every_scenario_and_seed(corpus):
    got = {(e["scenario"], e["seed"]) for e in corpus}
    assert got == {(n, s) for n in SCENARIOS for s in SEEDS}
    assert sum(1 for e in corpus if e["scenario"] == "cv_fold") == 5 * len(SEEDS)
    for e in corpus:
        assert Path(e["path"]).stat().st_size > 1000


@pytest.mark.timeout(240)
def test_healthy_runs_silent_throughout_the_live_replay(replayed):
    healthy = [r for r in replayed.values() if r["entry"]["label"] == HEALTHY]
    assert len(healthy) >= 2 * 10
    noisy = {Path(r["entry"]["path"]).name: sorted(r["alarms"]) for r in healthy if r["alarms"]}
    assert noisy == {}


@pytest.mark.timeout(240)
def test_problem_runs_get_the_right_kind(replayed):
    wrong = {}
    for r in replayed.values():
        label = r["entry"]["label"]
        if label == HEALTHY:
            continue
        top = r["final"][0].kind if r["final"] else None
        if top != label:
            wrong[Path(r["entry"]["path"]).name] = (label, top)
    assert wrong == {}


@pytest.mark.timeout(240)
def test_symptoms_and_detection_delays(replayed):
    timed = {"non_finite": 0, "val_turn": 0}  # how many delays were checked, by kind of onset
    for r in replayed.values():
        e = r["entry"]
        if e["label"] == HEALTHY:
            continue
        f = r["final"][0]
        if e["symptom"] in ("non_finite", "vanishing_gradients", "dead_units", "lr_too_small", "oscillation"):
            assert f.symptom == e["symptom"], (e["path"], f.symptom)
        seen, _ = r["first"][e["label"]]
        if e["onset"] == "non_finite":  # flagged on (or, with updates every 3 records, right after) the record
            assert seen - r["onset"] <= 3
        if e["onset"] == "val_turn":  # within 3 evaluations of the clear turn
            assert sum(1 for s in r["evals"] if r["onset"] < s <= seen) <= 3
        if e["onset"] in timed:
            timed[e["onset"]] += 1
    assert timed["non_finite"] >= len(SEEDS) and timed["val_turn"] >= len(SEEDS)  # the delays were measured


@pytest.mark.timeout(240)
def test_model_bias_and_optimization_pairs_told_apart(replayed):
    by = {(r["entry"]["scenario"], r["entry"]["seed"]): r for r in replayed.values()}
    for seed in SEEDS:
        lin, mlp = by[("bias_linear", seed)], by[("bias_mlp", seed)]
        assert [f.kind for f in lin["final"]] == ["model_bias"] and mlp["final"] == []
        deep, shallow = by[("opt_deep", seed)], by[("opt_shallow", seed)]
        assert deep["final"][0].kind == "optimization" and shallow["final"] == []
        assert deep["final"][0].run_names[1] == f"opt_shallow-s{seed}"  # names the run that tells


@pytest.mark.timeout(240)
def test_cross_validation_groups(corpus):
    from tui_monitor.cli import main

    folds = sorted({str(Path(e["path"]).parent) for e in corpus})
    import io, json, contextlib  # noqa: E401

    buf = io.StringIO()
    paths = [e["path"] for e in corpus if e["scenario"] == "cv_fold"]
    with contextlib.redirect_stdout(buf):
        rc = main(["diagnose", "--json", *paths])
    assert rc == 0
    rep = json.loads(buf.getvalue())
    assert len(rep["cv"]) == len(SEEDS) and folds
    for cv in rep["cv"]:
        bests = [f["best"] for f in cv["folds"]]
        assert cv["n"] == 5 and cv["complete"]
        assert cv["mean"] == pytest.approx(sum(bests) / 5, rel=1e-5)
        assert 0 < cv["std"] < cv["mean"]
