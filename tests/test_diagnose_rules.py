"""Each rule of the diagnosis against a real small training that reproduces
a failure users reported from real runs (issue 12), and its healthy
counterpart at the same length, replayed live and judged at 25, 50, 75 and
100% of the run (tests/rule_trainings.py)."""
from __future__ import annotations

import math

import pytest

pytest.importorskip("torch", reason="the rules are tested on real trainings: torch is the demo extra")

import rule_trainings as rt  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def kinds_at(cuts):
    return [[(f.kind, f.symptom) for f in c.findings] for c in cuts]


def assert_quiet(cuts):
    """No warning at any cut (a healthy run), and a verdict that is healthy
    or unknown, never a finding kind."""
    assert kinds_at(cuts) == [[] for _ in cuts]
    assert all(c.path.verdict in ("healthy", "unknown") for c in cuts)


# ---------------------------------------------------------------- step 1: no progress, crawl

def test_an_optimizer_bouncing_above_its_start_is_optimization(tmp_path):
    """SGD with momentum 0.99 and a clipped, far too large step: the loss
    swings above where it started for the whole run (no task declared)."""
    cuts = rt.replay(rt.classifier_steps(tmp_path, "bouncing", lr=1.0, steps=1000, clip=1.0, momentum=0.99,
                                         declare=False))
    assert [rt.top(c) for c in cuts] == ["optimization"] * 4
    f = cuts[-1].findings[0]
    assert f.symptom == "oscillation" and "never got meaningfully below where it started" in f.explanation
    assert f.evidence["lowest_window"] >= 0.9 * f.evidence["initial"]


def test_a_healthy_run_of_the_same_length_is_quiet(tmp_path):
    assert_quiet(rt.replay(rt.classifier_steps(tmp_path, "ok", lr=0.05, steps=1000, momentum=0.9, declare=False)))


def test_a_crawl_from_the_first_step_is_optimization(tmp_path):
    """Plain SGD at a learning rate far too small: no fast phase, the loss
    crawls down steadily from step 1 and is still near its start."""
    cuts = rt.replay(rt.classifier_steps(tmp_path, "crawl", lr=3e-3, steps=2000, declare=False))
    assert [rt.top(c) for c in cuts] == ["optimization"] * 4
    f = cuts[-1].findings[0]
    assert f.symptom == "crawl" and "learning rate is probably far too small" in f.explanation
    q = f.evidence["quarters"]
    assert q == sorted(q, reverse=True) and max(f.evidence["drops"]) <= 3 * min(f.evidence["drops"])


def test_a_healthy_slow_late_phase_is_not_a_crawl(tmp_path):
    """The same model at a sane rate, as long: a fast phase, then a slow
    late one that must not read as a crawl."""
    assert_quiet(rt.replay(rt.classifier_steps(tmp_path, "late", lr=0.03, steps=2000, declare=False)))


# ---------------------------------------------------------------- absolute references

def test_a_loss_that_exploded_early_and_stays_finite_is_divergence(tmp_path):
    """A learning rate of 3 for the first 20 steps blows the loss up; back
    at 1e-3 it creeps down at ~300x its start, finite all along."""
    cuts = rt.replay(rt.regression_steps(tmp_path, "blown", lr=1e-3, steps=1000,
                                         lr_at=lambda s: 3.0 if s < 20 else 1e-3))
    assert [(f.kind, f.symptom) for c in cuts for f in c.findings[:1]] == [("divergence", "exploding_loss")] * 4
    f = cuts[-1].findings[0]
    assert f.evidence["ratio"] > 100 and f.step <= 40
    assert "even though it is finite and creeping down" in f.explanation
    assert f.evidence["initial"] < 2.0  # the start is not taken from the exploded values


def test_the_same_regression_at_a_sane_rate_is_quiet(tmp_path):
    assert_quiet(rt.replay(rt.regression_steps(tmp_path, "sane", lr=3e-3, steps=1000)))


def test_a_finite_divergence_in_a_per_epoch_log_is_caught_from_the_first_quarter(tmp_path):
    """Per-epoch log (Keras CSV layout) of a linear model whose SGD step is
    just past stable: the loss grows to 1e6..1e27, finite."""
    logged = rt.regression_epochs(tmp_path, "lin", epochs=40, lr=1.02 / 25, scale=5.0, dtype="float64", hidden=0)
    losses = [r["values"]["loss"] for r in logged.records if r["type"] == "metrics" and "split" not in r]
    assert 1e6 < max(losses) < 1e40 and all(math.isfinite(v) for v in losses)
    cuts = rt.replay(logged, every=5)
    assert [rt.top(c) for c in cuts] == ["divergence"] * 4


# ---------------------------------------------------------------- per-epoch logs, scores

@pytest.mark.parametrize("epochs", [10, 100])
def test_a_dead_network_logged_per_epoch_is_optimization(tmp_path, epochs):
    """Keras-CSV-like: one line per epoch with loss, accuracy, val_loss,
    val_accuracy. Hidden biases at -20 kill every unit: the loss sits at
    ln 10 and the accuracy at chance (balanced classes) for the whole run."""
    logged = rt.classifier_epochs(tmp_path, "dead", epochs=epochs, lr=1e-3, bias_init=-20.0, balanced=True,
                                  declare=False)
    cuts = rt.replay(logged, every=5)
    judged = cuts[2:] if epochs == 10 else cuts  # 2 and 5 epochs are too few: two windows of 3 epochs
    assert [rt.top(c) for c in judged] == ["optimization"] * len(judged)
    assert cuts[-1].findings[0].symptom in ("at_chance", "score_flat")
    for early in cuts[:-len(judged)]:
        assert early.findings == [] and early.path.verdict == "unknown"
        assert "too early" in early.path.decisions[0].why and "6 in all" in early.path.needs


@pytest.mark.parametrize("epochs", [10, 100])
def test_healthy_per_epoch_logs_are_quiet(tmp_path, epochs):
    logged = rt.classifier_epochs(tmp_path, "ok", epochs=epochs, lr=3e-3 if epochs == 10 else 1e-3, balanced=True,
                                  n=4096, declare=False)
    assert_quiet(rt.replay(logged, every=5))


def test_a_loss_identical_for_thousands_of_steps_is_a_collapsed_model(tmp_path):
    """Full-batch training whose optimizer holds a copy of the model's
    parameters (a classic bug): the loss is identical at every step."""
    cuts = rt.replay(rt.full_batch(tmp_path, "frozen", frozen=True, steps=3000))
    assert [rt.top(c) for c in cuts] == ["optimization"] * 4
    assert [c.findings[0].symptom for c in cuts[1:]] == ["collapsed"] * 3


def test_a_converged_full_batch_run_is_not_collapsed_and_a_blip_at_its_floor_is_no_spike(tmp_path):
    """The same training with the right parameters converges to a floor
    near 1e-6 whose spread is ~0; one corrupted step there makes a blip of
    millions of MADs. Neither is a finding."""
    assert_quiet(rt.replay(rt.full_batch(tmp_path, "ok", steps=3000)))
    assert_quiet(rt.replay(rt.full_batch(tmp_path, "blip", steps=3000, noise=0.0, corrupt_at=2000, factor=1.05)))


# ---------------------------------------------------------------- held-out rules

def test_a_test_split_rising_from_its_first_evaluation_while_validation_falls_is_mismatch(tmp_path):
    """The model learns a feature that gives the label away in training and
    validation and the opposite one in the test split."""
    cuts = rt.replay(rt.spurious_steps(tmp_path, "spurious"))
    assert [(f.kind, f.symptom) for c in cuts for f in c.findings] == [("mismatch", "test_rises")] * 4
    assert all(c.path.verdict == "mismatch" for c in cuts)
    assert "validation loss fell" in cuts[-1].findings[0].explanation


def test_the_same_model_with_a_test_split_drawn_like_training_is_quiet(tmp_path):
    assert_quiet(rt.replay(rt.spurious_steps(tmp_path, "fair", flip=False)))


def test_losses_rising_together_during_a_warm_up_are_not_overfitting(tmp_path):
    """A fine-tune with a linear warm-up to a peak too high: after a short
    first descent, training and validation losses rise together as the rate
    grows (the validation interval spans the first descent)."""
    cuts = rt.replay(rt.finetune_warmup(tmp_path, "warmup", peak=0.05, steps=2000))
    assert all(f.kind != "overfitting" for c in cuts for f in c.findings)


@pytest.mark.parametrize("decay", [0.998, 0.999])
def test_a_gap_that_closes_is_not_a_persistent_mismatch(tmp_path, decay):
    """Validation on an exponential moving average of the weights: the
    average lags, so validation starts far above training, and the gap
    closes as it catches up."""
    assert_quiet(rt.replay(rt.ema_eval(tmp_path, "ema", decay=decay)))


def test_a_gap_that_stays_is_a_persistent_mismatch(tmp_path):
    """The only held-out split comes from elsewhere: validation stays ~6x
    training whatever training does."""
    cut = rt.final(rt.shifted_val(tmp_path, "shifted", shift=1.5))
    assert [(f.kind, f.symptom) for f in cut.findings] == [("mismatch", "persistent_gap")]


# ---------------------------------------------------------------- scores in their own direction

def test_a_score_that_never_moves_is_optimization_whatever_the_score(tmp_path):
    """A per-epoch log of a dead network (hidden biases at -20) on
    imbalanced classes that logs its macro F1, no accuracy, and declares no
    task: the output bias learns the class prior, so the loss creeps down,
    while the predictions, always the majority class, leave the F1 exactly
    where it is."""
    logged = rt.score_epochs(tmp_path, "dead-f1", epochs=30, bias_init=-20.0, prior=(0.85, 0.1, 0.03, 0.02),
                             score="f1", held_loss=True)
    cuts = rt.replay(logged, every=5)
    assert [(f.kind, f.symptom) for c in cuts[1:] for f in c.findings] == [("optimization", "score_flat")] * 3
    f = cuts[-1].findings[0]
    assert f.evidence["score"] == "train/f1" and "the train f1 has been exactly" in f.explanation


def test_the_same_network_alive_logging_its_f1_is_quiet(tmp_path):
    assert_quiet(rt.replay(rt.score_epochs(tmp_path, "ok-f1", epochs=30, prior=(0.85, 0.1, 0.03, 0.02), score="f1",
                                           held_loss=True), every=5))


def test_a_validation_accuracy_that_peaks_and_falls_is_overfitting_without_a_validation_loss(tmp_path):
    """A big MLP memorising 128 samples, 30% of them mislabelled, logged as a
    Keras CSV whose evaluations say only their accuracy: the validation
    accuracy peaks early and falls while the training loss goes to 0."""
    logged = rt.score_epochs(tmp_path, "overfit-acc", epochs=150, n=128, flip=0.3, hidden=(256, 256), batch=32)
    assert not any(r.get("split") == "val" and "loss" in r["values"] for r in logged.records if "values" in r)
    cuts = rt.replay(logged, every=5)
    assert [(f.kind, f.symptom) for c in cuts for f in c.findings] == [("overfitting", "validation_turned")] * 4
    assert all(c.path.verdict == "overfitting" for c in cuts)
    f = cuts[-1].findings[0]
    assert f.evidence["metric"] == "accuracy" and f.evidence["best"] > f.evidence["value"]
    assert "the validation accuracy (running median of 3 evaluations) is" in f.explanation
    assert f"its highest evaluation, {f.evidence['best']:.4g}" in f.explanation


def test_a_healthy_run_logging_validation_accuracy_alone_answers_the_held_out_question(tmp_path):
    """The same log of a healthy run: no finding, and the held-out question
    is answered from the accuracy (no overfitting or mismatch), where it
    used to be unknown for want of a held-out loss."""
    cuts = rt.replay(rt.score_epochs(tmp_path, "ok-acc", epochs=40), every=5)
    assert_quiet(cuts)
    held = cuts[-1].path.decisions[1]
    assert (held.question, held.answer) == ("held-out loss large?", "no")
    assert held.why.startswith("latest validation accuracy") and "training accuracy near that step" in held.why


# ---------------------------------------------------------------- confidence: evaluation noise, runs in view

def test_a_test_split_from_elsewhere_is_mismatch_unless_noise_among_a_sweep_could_make_it(tmp_path):
    """Regression whose test split comes from elsewhere. With 512 samples a
    split, the shift is far clear of the evaluation noise: mismatch alone
    and among 1,024 runs in view, as sure in both. With 48 samples the
    evaluations are noisy: a median test/validation ratio of ~1.9 clears
    the bar for one run (4 noise sigmas) but not among 1,024 runs, where
    noise alone makes ratios that large (5.5 sigmas: the largest of N grows
    like sqrt(2 ln N)), as the overfitting rule already asked."""
    clear = rt.shifted_test(tmp_path, "clear", shift=1.5)
    [alone] = rt.final(clear).findings
    [swept] = [f for f in rt.final(rt.in_a_sweep(clear)).findings if f.run_names == ["clear"]]
    assert alone.symptom == swept.symptom == "test_shift"
    assert alone.confidence == swept.confidence >= 0.85 and swept.evidence["runs_in_view"] == 1024
    noisy = rt.shifted_test(tmp_path, "noisy", shift=1.25, n_held=48)
    [alone] = rt.final(noisy).findings
    excess, sigma = 100 * (alone.evidence["test_over_val_median"] - 1), alone.evidence["jitter_percent"]
    assert alone.symptom == "test_shift" and sigma > 15
    assert 4 * sigma < excess < math.sqrt(16 + 2 * math.log(1024)) * sigma  # between the two bars
    assert [f for f in rt.final(rt.in_a_sweep(noisy)).findings if f.run_names == ["noisy"]] == []


# ---------------------------------------------------------------- a loss that need not fall

def test_a_gan_whose_discriminator_left_its_level_by_an_order_of_magnitude_is_divergence(tmp_path):
    """A discriminator at a far too large rate (Adam, 10): its loss, which
    need not fall, leaves its level (2 ln 2 at the start) for ten times it and
    swings there, finite. No task, held-out split or score: the supervised
    rules say nothing, the divergence rule reads the level against the first
    points."""
    cuts = rt.replay(rt.gan_steps(tmp_path, "gan-lr10", lr_d=10.0))
    assert [rt.top(c) for c in cuts] == [None, "divergence", "divergence", "divergence"]
    f = cuts[-1].findings[0]
    assert f.symptom == "exploding_loss" and "has left its level" in f.explanation
    assert f.evidence["ratio"] >= 10 and f.evidence["reference"] == pytest.approx(f.evidence["first_points"])
    assert f.step <= f.evidence["window_steps"][0]  # from where the window that shows it begins, at the latest


@pytest.mark.parametrize("seed", [0, 1])
def test_the_same_gan_at_a_sane_rate_is_quiet(tmp_path, seed):
    assert_quiet(rt.replay(rt.gan_steps(tmp_path, f"gan-{seed}", lr_d=1e-3, seed=seed)))


def test_a_loss_far_above_its_start_is_not_said_to_have_never_left_it(tmp_path):
    """Adam whose rate jumps to 0.3 every other ten steps: the loss sits
    many times above where it started. The path says so, with the ratio,
    instead of "it never left its initial value" (which read as a flat
    loss)."""
    cuts = rt.replay(rt.regression_steps(tmp_path, "osc", lr=0.003, steps=400,
                                         lr_at=lambda s: 0.003 if (s // 10) % 2 == 0 else 0.3))
    whys = [c.path.decisions[0].why for c in cuts]
    assert not any("never left its initial value" in w for w in whys)
    f = cuts[-1].findings[0]
    assert (f.kind, f.symptom) == ("optimization", "oscillation")
    ratio = f.evidence["level"] / f.evidence["initial"]
    assert whys[-1].startswith("it is above where it started") and f"({ratio:.3g}x)" in whys[-1]
