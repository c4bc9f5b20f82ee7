"""The detectors over synthetic curves: each rule, its edge cases, and the
engine's incremental behaviour."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from diagnose_helpers import decaying, diagnose, kinds, run_records

from tui_monitor.diagnose import Diagnoser, Settings
from tui_monitor.schema import split_metric
from tui_monitor.store import Store

CLS = {"task": "classification", "num_classes": 10}
LN10 = math.log(10)


def test_healthy_decaying_run_is_silent_throughout():
    train = decaying(600, 2.3, 0.2, noise=0.1)
    val = decaying(60, 2.3, 0.3, tau=15)
    eng = diagnose(run_records("ok", train, val, config=CLS), every=7)
    assert eng.findings == []
    p = eng.decision_paths()[0]
    assert p.verdict == "healthy"
    assert p.decisions[0].answer == "no"


def test_short_run_says_nothing_and_path_is_unknown():
    eng = diagnose(run_records("short", [2.3, 2.2, 2.25], config=CLS))
    assert eng.findings == []
    p = eng.decision_paths()[0]
    assert p.decisions[0].question == "training loss large?"
    assert p.decisions[0].answer == "unknown"


def test_empty_store_and_run_without_loss():
    eng = diagnose()
    assert eng.findings == [] and eng.decision_paths() == []
    recs = [{"type": "run", "seq": 0, "run_id": "x", "name": "x"},
            {"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"acc": 0.5}}]
    eng = diagnose(recs)
    assert eng.findings == []


def test_constant_loss_at_the_trivial_level_is_a_stall():
    eng = diagnose(run_records("flat", [LN10] * 500, config=CLS, model={"depth": 4, "params": 1000}))
    [f] = eng.findings
    assert f.kind == "optimization" and f.symptom == "stalled"  # never left its initial value
    assert f.severity == "warning"
    assert f.evidence["ratio_to_trivial"] == pytest.approx(1.0)


def test_constant_small_loss_is_silent():
    eng = diagnose(run_records("converged", [0.05] * 500, config=CLS))
    assert eng.findings == []
    assert eng.decision_paths()[0].decisions[0].answer == "no"


def test_all_nan_is_critical_at_the_first_step():
    eng = diagnose(run_records("nan", [math.nan] * 50, steps=range(100, 150)))
    [f] = eng.findings
    assert (f.kind, f.symptom, f.severity, f.step) == ("divergence", "non_finite", "critical", 100)
    assert f.evidence["count"] == 50


def test_non_finite_flagged_on_the_record_that_carries_it():
    train = list(decaying(300, 1.0, 0.2))
    train[137] = math.inf
    recs = run_records("inf", train, end=False)
    from tui_monitor.schema import split_metric
    from tui_monitor.store import Store
    from tui_monitor.diagnose import Diagnoser

    store = Store(splitter=split_metric)
    eng = Diagnoser(store)
    for r in recs:
        store.apply(r, stream="s")
        ch = eng.update()
        if ch.added:
            assert r.get("step") == 137
            assert ch.added[0].symptom == "non_finite" and ch.added[0].step == 137
            break
    else:
        pytest.fail("non-finite loss never flagged")


def test_exploding_finite_loss_is_divergence():
    train = np.concatenate([decaying(200, 1.0, 0.3), 0.3 * np.exp(np.arange(60) * 0.3)])
    eng = diagnose(run_records("boom", train))
    f = eng.findings[0]
    assert (f.kind, f.symptom, f.severity) == ("divergence", "exploding_loss", "critical")
    assert 200 <= f.step <= 240


def test_huge_values_do_not_break_the_engine():
    train = np.full(400, 1e300)
    train[::7] = 1e305
    eng = diagnose(run_records("huge", train, val=np.full(40, 1e300)))
    assert [(f.kind, f.symptom) for f in eng.findings] == [("divergence", "exploding_loss")]
    assert all(0 <= f.confidence <= 1 and math.isfinite(f.confidence) for f in eng.findings)
    (path,) = eng.decision_paths()
    assert path.verdict == "divergence" and [d.answer for d in path.decisions] == ["yes", "optimization"]


def test_single_evaluation_is_never_overfitting():
    eng = diagnose(run_records("one-eval", decaying(300, 1, 0.01), val=[5.0], eval_every=1000))
    assert "overfitting" not in kinds(eng)


def _u_val(n=40, turn=15, rise=0.02):
    v = [1.0 - 0.04 * i for i in range(turn)] + [1.0 - 0.04 * turn + rise * (i - turn) for i in range(turn, n)]
    return np.array(v)


def test_overfitting_flagged_within_three_evaluations_and_names_best_checkpoint():
    val = _u_val()
    train = decaying(400, 1.0, 0.01)
    eng = diagnose(run_records("of", train, val, eval_every=10))
    [f] = [f for f in eng.findings if f.kind == "overfitting"]
    assert f.evidence["best_step"] == 150
    # "clearly turned": first evaluation 5% above the best
    best = val.min()
    onset_eval = next(i for i in range(15, 40) if val[i] > 1.05 * best)
    # replay live: when was it first raised?
    from tui_monitor.schema import split_metric
    from tui_monitor.store import Store
    from tui_monitor.diagnose import Diagnoser

    store = Store(splitter=split_metric)
    e2 = Diagnoser(store)
    first = None
    for r in run_records("of", train, val, eval_every=10):
        store.apply(r, stream=0)
        e2.update()
        if first is None and any(x.kind == "overfitting" for x in e2.findings):
            first = r["step"]
    assert first is not None and first // 10 - onset_eval <= 3


def test_overfitting_retracts_when_the_validation_loss_comes_back():
    val = np.concatenate([_u_val(30), np.linspace(0.9, 0.3, 20)])
    recs = run_records("back", decaying(500, 1.0, 0.01), val, eval_every=10)
    from tui_monitor.schema import split_metric
    from tui_monitor.store import Store
    from tui_monitor.diagnose import Diagnoser

    store = Store(splitter=split_metric)
    eng = Diagnoser(store)
    raised = retracted = False
    for r in recs:
        store.apply(r, stream=0)
        ch = eng.update()
        raised |= any(f.kind == "overfitting" for f in ch.added)
        retracted |= raised and any(f.kind == "overfitting" for f in ch.retracted)
    assert raised and retracted
    assert "overfitting" not in kinds(eng)


def test_noisy_validation_plateau_is_not_overfitting():
    rng = np.random.default_rng(1)
    val = np.concatenate([np.linspace(1.0, 0.5, 10), 0.5 * (1 + 0.02 * rng.standard_normal(50))])
    eng = diagnose(run_records("noisy-val", decaying(600, 1.0, 0.3, noise=0.05), val, eval_every=10), every=3)
    assert eng.findings == []


def test_mismatch_from_a_shifted_test_split():
    train = decaying(400, 1.0, 0.1)
    val = decaying(40, 1.0, 0.12, tau=10)
    test = 3 * decaying(40, 1.0, 0.3, tau=10) + 0.3
    eng = diagnose(run_records("shift", train, val, test, eval_every=10))
    [f] = eng.findings
    assert (f.kind, f.symptom) == ("mismatch", "test_shift")
    assert f.evidence["test_over_val_median"] > 1.5


def test_unsorted_and_repeated_steps():
    rng = np.random.default_rng(0)
    n = 400
    steps = np.repeat(np.arange(n // 2), 2)  # every step logged twice
    steps[100:120] = steps[100:120][::-1]  # and a stretch out of order
    train = decaying(n, 2.3, 0.2, noise=0.05)
    eng = diagnose(run_records("messy", train, val=decaying(40, 2.3, 0.3, tau=10), steps=steps, config=CLS),
                   every=11)
    assert eng.findings == []
    rng.shuffle(steps)
    eng = diagnose(run_records("shuffled", [LN10] * n, steps=steps, config=CLS, model={"depth": 4}))
    assert kinds(eng) == ["optimization"]


def test_incremental_equals_batch():
    train = decaying(500, 1.0, 0.01)
    val = _u_val(50)
    recs = run_records("of", train, val, eval_every=10)
    a = diagnose(recs)
    b = diagnose(recs, every=13)
    assert [f.id for f in a.findings] == [f.id for f in b.findings]
    assert [f.evidence["best_step"] for f in a.findings] == [f.evidence["best_step"] for f in b.findings]


def test_update_without_new_records_is_a_no_op():
    eng = diagnose(run_records("x", [LN10] * 400, config=CLS, model={"depth": 4}))
    before = [f.id for f in eng.findings]
    assert not eng.update()
    assert [f.id for f in eng.findings] == before


def test_a_version_bump_with_nothing_new_is_not_assessed_again():
    recs = run_records("x", [LN10] * 400, config=CLS, model={"depth": 4}, end=False)
    eng = diagnose(recs)
    st = next(iter(eng.states.values()))
    before, ids = st.assessment, [f.id for f in eng.findings]
    t = recs[-1]["time"]
    for i in range(3):  # heartbeats and a system sample move the run's version, not its losses
        eng.store.apply({"type": "heartbeat", "seq": 401 + i, "time": t + i, "step": 399, "last_log": t}, stream=0)
        assert not eng.update()
    eng.store.apply({"type": "system", "seq": 404, "time": t + 4, "values": {"cpu": 50.0}}, stream=0)
    assert not eng.update()
    assert st.assessment is before and [f.id for f in eng.findings] == ids
    # a meta record that changes the task is an input: the run is assessed again
    eng.store.apply({"type": "meta", "seq": 405, "time": t + 5, "config": {"task": "regression"}}, stream=0)
    eng.update()
    assert st.assessment is not before and st.assessment.trivial is None


def test_a_fold_group_is_complete_when_its_end_records_come_after_the_losses():
    from tui_monitor.diagnose import Diagnoser
    from tui_monitor.store import Store

    store = Store()
    eng = Diagnoser(store)
    ends = []
    for k in range(3):
        recs = run_records(f"f{k}", np.linspace(2, 1, 50), val=np.linspace(2, 1.2, 5),
                           tags={"fold": k, "group": "cv"}, run_id=f"r{k}")
        store.apply_many(recs[:-1], stream=k)
        ends.append((k, recs[-1]))
    eng.update()
    assert not eng.cv_summaries()[0].complete
    for k, end in ends:  # nothing new for the tracks, but every fold has ended
        store.apply(end, stream=k)
    eng.update()
    cv = eng.cv_summaries()[0]
    assert cv.complete and "still running" not in cv.text()


def test_a_meta_record_that_names_the_data_moves_the_run_to_that_group():
    from tui_monitor.diagnose import Diagnoser
    from tui_monitor.store import Store

    store = Store()
    eng = Diagnoser(store)
    store.apply_many(run_records("a", np.linspace(2, 1, 50), val=np.linspace(2, 1.2, 5), config={"data": "cifar"},
                                 run_id="a"), stream="a")
    b = run_records("b", np.linspace(2, 1, 50), val=np.linspace(2, 1.2, 5), run_id="b", end=False)
    store.apply_many(b, stream="b")
    eng.update()
    assert sorted(eng._group_cross) == ["(runs without a data key)", "cifar"]
    store.apply({"type": "meta", "seq": len(b), "time": 1.7e9 + 60, "config": {"data": "cifar"}}, stream="b")
    eng.update()
    assert {g: sorted(k[0] for k in v) for g, v in eng._group_cross.items()} == {"cifar": ["a", "b"]}


def _dead(step):
    return {"0.weight": {"grad": 0.0, "weight": 3.0, "zero_rows": 1.0},
            "2.weight": {"grad": 0.0, "weight": 1.0, "zero_rows": 1.0},
            "2.bias": {"grad": 0.01, "weight": 0.1}}


def _vanish(step):
    return {"0.weight": {"grad": 1e-12, "weight": 3.0, "zero_rows": 0.0},
            "38.weight": {"grad": 0.1, "weight": 1.0, "zero_rows": 0.0}}


def _tiny(step):
    return {"0.weight": {"grad": 0.1, "weight": 3.0 + 1e-9 * step, "zero_rows": 0.0},
            "2.weight": {"grad": 0.1, "weight": 1.0 + 1e-9 * step, "zero_rows": 0.0}}


@pytest.mark.parametrize("grads, symptom", [(_dead, "dead_units"), (_vanish, "vanishing_gradients"),
                                            (_tiny, "lr_too_small")])
def test_plateau_with_gradient_symptoms_is_optimization(grads, symptom):
    rng = np.random.default_rng(0)
    train = LN10 * (1 + 0.01 * rng.standard_normal(400))
    eng = diagnose(run_records("g", train, config=CLS, model={"depth": 3}, grads=grads))
    [f] = eng.findings
    assert (f.kind, f.symptom) == ("optimization", symptom)
    assert f.confidence >= 0.75


def test_linear_model_plateau_is_model_bias():
    train = decaying(400, 3.0, 0.95 * LN10, tau=30)
    eng = diagnose(run_records("linear", train, config=CLS, model={"depth": 1, "params": 100}))
    [f] = eng.findings
    assert f.kind == "model_bias"
    assert "optimization" in f.also_possible


def _shallow_and_deep():
    """A shallow run and a deeper, more flexible one that ends higher, on the same data."""
    data = {**CLS, "data": "d1"}
    shallow = run_records("shallow", decaying(400, LN10, 0.3, tau=40), config=data,
                          model={"depth": 3, "params": 10_000}, run_id="a")
    deep = run_records("deep", decaying(400, LN10, 1.2, tau=40), config=data,
                       model={"depth": 20, "params": 50_000}, run_id="b")
    return shallow, deep


def test_deeper_run_with_higher_training_loss_is_optimization_naming_both():
    shallow, deep = _shallow_and_deep()
    eng = diagnose(shallow, deep, every=50)
    [f] = eng.findings
    assert f.kind == "optimization" and f.run_names == ["deep", "shallow"]
    assert f.evidence["other_level"] < f.evidence["level"]


def test_more_flexibility_lowering_a_plateau_is_model_bias():
    data = {"data": "d2"}  # no task: no trivial loss, the comparison alone decides
    small = run_records("small", decaying(400, 1.0, 0.6, tau=30), config=data, model={"depth": 1, "params": 10},
                        run_id="a")
    big = run_records("big", decaying(400, 1.0, 0.1, tau=30), config=data, model={"depth": 3, "params": 5000},
                      run_id="b")
    eng = diagnose(small, big)
    [f] = eng.findings
    assert f.kind == "model_bias" and f.run_names == ["small", "big"]


def test_runs_of_different_data_are_not_compared():
    small = run_records("small", decaying(400, 1.0, 0.6, tau=30), config={"data": "x"},
                        model={"depth": 2, "params": 10}, run_id="a")
    big = run_records("big", decaying(400, 1.0, 0.1, tau=30), config={"data": "y"},
                      model={"depth": 3, "params": 5000}, run_id="b")
    assert diagnose(small, big).findings == []


def test_baseline_marked_by_argument_or_tag_is_cited():
    a = run_records("base", decaying(400, LN10, 0.3, tau=40), config=CLS, model={"depth": 3, "params": 50_000},
                    run_id="a")
    b = run_records("other", decaying(400, LN10, 1.2, tau=40), config=CLS, model={"depth": 3, "params": 50_000},
                    run_id="b")
    assert diagnose(a, b).findings == []  # equally flexible, no baseline: nothing to say
    [f] = diagnose(a, b, baseline="base").findings
    assert f.kind == "optimization" and f.run_names == ["other", "base"]
    a_tagged = run_records("base", decaying(400, LN10, 0.3, tau=40), config=CLS,
                           model={"depth": 3, "params": 50_000}, run_id="a", tags={"baseline": True})
    [f] = diagnose(a_tagged, b).findings
    assert f.run_names == ["other", "base"]


def test_task_override_gives_the_trivial_loss():
    train = [LN10 * 0.95] * 300
    eng = diagnose(run_records("t", train, model={"depth": 1}), task={"task": "classification", "num_classes": 10})
    st = next(iter(eng.states.values()))
    assert st.task.trivial == pytest.approx(LN10)
    assert kinds(eng) == ["model_bias"]
    from tui_monitor.diagnose import task_of

    class R:
        config = {"task": "regression", "target_var": 2.5}
    assert task_of(R()).trivial == 2.5
    R.config = {"task": "regression"}
    assert task_of(R()).trivial is None


def test_cross_validation_summary():
    streams = []
    bests = [0.5, 0.6, 0.55, 0.65, 0.7]
    for k, b in enumerate(bests):
        val = np.concatenate([np.linspace(1.0, b, 10), np.full(10, b + 0.01)])
        streams.append(run_records(f"f{k}", decaying(200, 1, 0.3), val, config={"data": "cv"},
                                   tags={"fold": k, "group": "cv5"}, run_id=f"r{k}"))
    eng = diagnose(*streams)
    [cv] = eng.cv_summaries()
    assert cv.n == 5 and cv.complete
    assert cv.mean == pytest.approx(np.mean(bests))
    assert cv.std == pytest.approx(np.std(bests, ddof=1))
    assert [f["best"] for f in cv.folds] == pytest.approx(bests)
    assert cv.rank == 1



def test_task_inferred_only_when_the_start_sits_at_ln_c():
    import math

    from tui_monitor.diagnose.reference import task_of
    from tui_monitor.store import Store

    def run_starting_at(values, config=None):
        store = Store()
        store.apply({"type": "run", "seq": 0, "run_id": "r", "config": config or {}}, stream="s")
        for i, v in enumerate(values):
            store.apply({"type": "metrics", "seq": i + 1, "step": i, "time": float(i), "values": {"loss": v}}, stream="s")
        return store.get("r")

    t = task_of(run_starting_at([2.3031, 2.3020, 2.3012]))
    assert t.kind == "classification" and t.trivial == math.log(10) and "inferred" in t.why
    assert task_of(run_starting_at([2.2, 2.1, 2.0])).trivial is None          # 4% off ln 9 and ln 10: no guess
    assert task_of(run_starting_at([2.3026, 2.3026])).trivial is None         # too few points
    declared = task_of(run_starting_at([2.3026] * 3, {"task": "regression", "target_var": 4.0}))
    assert declared.kind == "regression" and declared.trivial == 4.0          # a declaration wins


def test_run_renamed_by_a_late_header_is_one_run():
    """Records before the header go to a placeholder run keyed by the stream;
    the header renames it. The engine must not keep the old key's state: one
    run in the report, its findings under the new key only."""
    from tui_monitor.diagnose import Diagnoser
    from tui_monitor.diagnose.report import report_dict
    from tui_monitor.schema import split_metric
    from tui_monitor.store import Store

    recs = run_records("late-name", [math.nan] * 20, run_id="late1", end=False)
    head, body = recs[0], recs[1:]
    store = Store(splitter=split_metric)
    eng = Diagnoser(store)
    for r in body:
        store.apply(r, stream="tok")
    eng.update()
    assert list(eng.states) == [("tok", 0)]
    [f] = eng.findings
    assert f.runs[0] == ("tok", 0)
    store.apply(head, stream="tok")
    rep = report_dict(eng)  # before the engine has seen the rename: as of the last update
    assert [r["run_id"] for r in rep["runs"]] == ["late1"] and rep["summary"]["runs"] == 1
    ch = eng.update()
    assert list(store.runs) == [("late1", 0)]
    assert list(eng.states) == [("late1", 0)]
    assert [g.id for g in ch.retracted] == [f.id]
    [g] = eng.findings
    assert g.runs == [("late1", 0)] and g.run_names == ["late-name"] and g.symptom == "non_finite"
    rep = report_dict(eng)
    assert rep["summary"]["runs"] == 1
    assert [(r["run_id"], r["name"]) for r in rep["runs"]] == [("late1", "late-name")]
    assert len(eng.decision_paths()) == 1


def test_a_mistyped_field_of_the_typed_records_fails():
    """The assessment, the loss windows and the cross-run evidence are typed
    records: a typo raises instead of reading as None."""
    from tui_monitor.diagnose.compare import NO_CROSS

    eng = diagnose(run_records("x", [LN10] * 400, config=CLS, model={"depth": 4}))
    st = next(iter(eng.states.values()))
    a = st.assessment
    assert a.large == "yes" and a.window.now == pytest.approx(LN10)
    with pytest.raises(AttributeError):
        a.larg  # noqa: B018
    with pytest.raises(AttributeError):
        a.window.b  # noqa: B018
    with pytest.raises(AttributeError):
        NO_CROSS.lower_simple  # noqa: B018
    with pytest.raises((AttributeError, TypeError)):
        a.large = "no"  # frozen
    with pytest.raises(AttributeError):
        st.memo.pair  # noqa: B018
    with pytest.raises(AttributeError):
        st.memo.pair = []


# ---------------------------------------------------------------- unknown is not healthy; texts


def test_unknown_is_not_healthy_and_says_what_would_decide():
    """No task and no held-out loss: the method's questions cannot be
    answered, so the verdict is unknown with what would decide it, in the
    path, the text report and the JSON."""
    from tui_monitor.diagnose.report import report_dict, report_text

    eng = diagnose(run_records("free", decaying(600, 2.0, 0.9, noise=0.05)))
    (p,) = eng.decision_paths()
    assert p.verdict == "unknown"
    assert p.decisions[0].answer == "unknown" and "declare the task" in p.decisions[0].needs
    assert "declare the task" in p.needs and "val split" in p.needs
    assert "(to decide: declare the task" in report_text(eng)
    [run] = report_dict(eng)["runs"]
    assert run["verdict"] == "unknown" and "val split" in run["needs"]
    # a declared task and a small loss answer step 1, but without held-out data step 2 stays open
    eng = diagnose(run_records("no-val", decaying(600, 2.3, 0.2, noise=0.05), config=CLS))
    (p,) = eng.decision_paths()
    assert [d.answer for d in p.decisions] == ["no", "unknown"] and p.verdict == "unknown"
    assert p.needs == "a held-out loss (log a val split)"
    # too few evaluations: how many more
    eng = diagnose(run_records("few", decaying(600, 2.3, 0.2), val=[2.3, 1.0], eval_every=300, config=CLS))
    (p,) = eng.decision_paths()
    assert p.verdict == "unknown" and p.needs == "2 more evaluations (4 in all)"


def test_a_short_run_says_how_many_points_it_needs():
    eng = diagnose(run_records("short", decaying(40, 2.3, 1.0), config=CLS))
    (p,) = eng.decision_paths()
    assert p.verdict == "unknown" and "too early" in p.decisions[0].why
    assert p.needs.startswith("160 more training points (200 in all)")


def test_overfitting_text_names_smoothed_numbers_and_no_rise_over_the_last_0():
    """A validation loss that jumped and stays up: GL is large while the
    running median no longer rises; the text says what it measured."""
    val = np.concatenate([np.linspace(1.0, 0.5, 12), np.full(8, 0.75)])
    eng = diagnose(run_records("jump", decaying(200, 1.0, 0.05), val, eval_every=10))
    [f] = [f for f in eng.findings if f.kind == "overfitting"]
    assert f.evidence["UP"] == 0 and "over the last 0" not in f.explanation
    assert "running median of 3 evaluations" in f.explanation and f"{f.evidence['best_smoothed']:.4g}" in f.explanation
    assert f"Keep the checkpoint of step {f.evidence['best_step']}" in f.explanation


def test_a_run_that_never_improved_is_not_told_to_keep_step_0():
    val = np.linspace(1.0, 2.0, 20)
    eng = diagnose(run_records("worse", decaying(200, 1.0, 0.05), val, eval_every=10))
    [f] = [f for f in eng.findings if f.kind == "overfitting"]
    assert "checkpoint of step 0" not in f.explanation
    assert "never improved on its first evaluation" in f.explanation


def test_the_headline_names_the_run_it_is_about():
    from tui_monitor.diagnose.report import report_text

    eng = diagnose(*_shallow_and_deep())
    [f] = eng.findings
    assert f.headline() == "optimization/flexibility_inversion  deep (compared with shallow)"
    assert "WARNING  optimization/flexibility_inversion  deep (compared with shallow) from step" in report_text(eng)


def test_the_path_cites_the_training_loss_near_the_last_evaluation():
    train = decaying(600, 2.3, 0.2)
    val = decaying(30, 2.3, 0.3, tau=8)
    eng = diagnose(run_records("ok", train, val, eval_every=20, config=CLS))
    (p,) = eng.decision_paths()
    assert p.verdict == "healthy"
    near = float(np.mean(train[580 - 16 + 1:581]))  # the 16 steps up to the last evaluation (step 580)
    assert f"{val[-1] / near:.2g}x the training loss near that step ({near:.4g})" in p.decisions[-1].why



def test_tunable_thresholds_are_settings_with_their_default_among_the_candidates():
    from dataclasses import fields

    from tui_monitor.diagnose.settings import TUNABLE, Settings

    names = {f.name: f for f in fields(Settings)}
    defaults = Settings()
    assert 5 <= len(TUNABLE) <= 12
    for name, values in TUNABLE.items():
        assert name in names, name
        assert 3 <= len(values) <= 5 and len(set(values)) == len(values)
        assert getattr(defaults, name) in values
        for v in values:
            assert getattr(Settings(**{name: v}), name) == v
            assert type(v) is type(getattr(defaults, name))


def test_a_negative_loss_that_explodes_does_not_break_the_engine():
    """A reinforcement-learning loss is often negative: there is no positive
    reference to judge an explosion against, and the engine must not raise."""
    train = np.concatenate([-1.0 - 0.1 * np.arange(200) / 200, -np.exp(np.arange(60) * 0.3)])
    eng = diagnose(run_records("rl", train), every=17)
    assert all(f.kind == "divergence" for f in eng.findings)
    (p,) = eng.decision_paths()
    assert p.verdict in ("unknown", "divergence")


def test_a_training_accuracy_that_falls_far_below_its_best_is_optimization():
    """Per-epoch log: the first epoch's loss exploded (so its start says
    nothing), then the loss sits near ln C while the training accuracy
    falls from 0.35 to 0.19: the optimizer undoes what it learned."""
    from tui_monitor.diagnose.report import report_dict

    loss = [52.0, 27.5, 10.4, 5.5, 2.9] + [2.1 + 0.004 * e for e in range(45)]
    acc = [0.2, 0.3] + [0.35 - 0.16 * min(1.0, e / 30) for e in range(48)]
    recs = [{"type": "run", "seq": 0, "run_id": "huge", "name": "huge", "config": {}}]
    for e, (lv, av) in enumerate(zip(loss, acc)):
        recs.append({"type": "metrics", "seq": len(recs), "step": e, "time": 1.7e9 + e,
                     "values": {"loss": lv, "accuracy": av}})
        recs.append({"type": "metrics", "seq": len(recs), "step": e, "time": 1.7e9 + e, "split": "val",
                     "values": {"loss": lv * 1.1}})
    eng = diagnose(recs)
    [f] = eng.findings
    assert (f.kind, f.symptom) == ("optimization", "score_fell")
    assert f.evidence["score_now"] < 0.7 * f.evidence["score_best_window"]
    assert report_dict(eng)["runs"][0]["verdict"] == "optimization"


def test_a_training_error_rate_that_rises_far_above_its_best_is_optimization():
    """The same run logging a word error rate (lower is better) instead of
    an accuracy: read in its own direction, a WER that rose from 0.40 to
    0.80 has fallen as far from its best as an accuracy halved."""
    loss = [52.0, 27.5, 10.4, 5.5, 2.9] + [2.1 + 0.004 * e for e in range(45)]
    wer = [0.7, 0.5] + [0.4 + 0.4 * min(1.0, e / 30) for e in range(48)]
    recs = [{"type": "run", "seq": 0, "run_id": "asr", "name": "asr", "config": {}}]
    for e, (lv, wv) in enumerate(zip(loss, wer)):
        recs.append({"type": "metrics", "seq": len(recs), "step": e, "time": 1.7e9 + e,
                     "values": {"loss": lv, "wer": wv}})
        recs.append({"type": "metrics", "seq": len(recs), "step": e, "time": 1.7e9 + e, "split": "val",
                     "values": {"loss": lv * 1.1}})
    eng = diagnose(recs)
    [f] = eng.findings
    assert (f.kind, f.symptom) == ("optimization", "score_fell")
    assert f.evidence["score"] == "train/wer" and f.evidence["score_now"] > f.evidence["score_best_window"] / 0.7
    assert "the train wer rose from 0.4" in f.explanation


@pytest.mark.parametrize("name, score, accuracy", [
    ("val_acc", True, True), ("valAccuracy", True, True), ("eval/WER", True, False), ("top1_err", True, False),
    ("valLoss", False, False), ("evalLoss", False, False), ("episodeReward", False, False), ("reward", False, False),
])
def test_a_metric_name_is_split_into_words_as_the_chart_splits_it(name, score, accuracy):
    """Which metric scores predictions reads the same words as the chart's
    direction (camelCase split): a Keras ``valLoss`` is a loss, not a score
    that improves downward, and an ``episodeReward`` is a reward."""
    from tui_monitor.diagnose.signals import is_accuracy, is_score

    assert (is_score(name), is_accuracy(name)) == (score, accuracy)


def _sweep_stubs(runs):
    """Runs of a sweep in view, each with one validation evaluation."""
    return [[{"type": "run", "seq": 0, "v": 1, "run_id": f"sweep-{k}", "name": f"sweep-{k}", "start": 1.7e9,
              "config": {}},
             {"type": "metrics", "seq": 1, "step": 0, "time": 1.7e9, "split": "val", "values": {"loss": 1.0}}]
            for k in range(1, runs)]


def test_a_persistent_gap_made_of_noisy_evaluations_is_not_raised_among_a_sweep():
    """Validation 2.5x and 3.2x training in turn (30% evaluation noise),
    twelve evaluations: the median ratio clears the bar for one run and for
    16 in view, not among 1,024, where noise makes gaps that large."""
    train = 0.2 * (1 + 0.01 * np.random.default_rng(1).standard_normal(480))
    val = 0.2 * np.array([3.2 if i % 2 == 0 else 2.5 for i in range(12)])  # ends low: no U
    recs = run_records("gap", train, val, eval_every=40)
    for runs, raised in ((1, True), (16, True), (1024, False)):
        eng = diagnose(recs, *_sweep_stubs(runs))
        gap = [f for f in eng.findings if f.symptom == "persistent_gap"]
        assert bool(gap) == raised, runs
        if gap:
            assert gap[0].evidence["jitter_percent"] > 25 and gap[0].evidence["runs_in_view"] == runs


def test_every_setting_is_read_by_the_engine():
    """Settings is where every threshold lives: a field no rule reads is a
    threshold that moved back into the code (or dead)."""
    import pathlib
    from dataclasses import fields

    import tui_monitor.diagnose as pkg
    from tui_monitor.diagnose.settings import Settings

    code = "".join(p.read_text() for p in pathlib.Path(pkg.__file__).parent.glob("*.py") if p.name != "settings.py")
    unread = [f.name for f in fields(Settings) if not re.search(rf"\.{f.name}\b", code)]
    assert unread == []


def test_a_large_loss_stays_large_down_to_the_margin_settings_names():
    """Hysteresis of step 1's "large": a loss that was 90% of the trivial loss
    and settles at 70% (below large_vs_trivial, 0.75) stays large with the
    default margin (0.1) and is no longer large with a margin of 0."""
    train = np.concatenate([np.full(400, 0.9), np.full(400, 0.7)]) * (1 + 0.01 * np.sin(np.arange(800)))
    steps = {}
    for margin in (0.1, 0.0):
        store = Store(splitter=split_metric)
        eng = Diagnoser(store, settings=Settings(large_keep_margin=margin))
        recs = run_records("r", train, config={"task": "regression", "target_var": 1.0})
        for i in range(0, len(recs), 50):
            store.apply_many(recs[i:i + 50], stream=0)
            eng.update()
        (st,) = eng.states.values()
        steps[margin] = st.assessment.large
    assert steps == {0.1: "yes", 0.0: None}
