"""Labelled training scenarios: small real PyTorch runs, one per case of the
diagnostic method (docs/diagnosis.md), written through the hook.

Importing this package loads neither torch nor numpy: the registry below is
plain data, and :mod:`tui_monitor.scenarios.train` imports torch when a
scenario is run. Run one with::

    python -m tui_monitor.scenarios NAME --dir DIR [--seed S] [--delay SECONDS]

or the whole labelled corpus with :func:`tui_monitor.scenarios.corpus.generate`
(``python demo/generate_corpus.py DIR``).

Each scenario is one run (one stream file). Runs meant to be compared (the
model-bias and optimization pairs, the folds of a cross-validation) share a
``data`` key in their config, which the engine uses to group runs of the same
data. The expected labels live here and in the corpus manifest, never in the
stream: the engine is not told the answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

__all__ = ["Scenario", "SCENARIOS", "FAMILIES", "HEALTHY"]

#: The label of a run that should raise nothing at warning level or above.
HEALTHY = "healthy"

#: The families: runs that share a way of training and logging. Thresholds
#: are chosen on some families and judged on the others (bench/diagnosis.py).
FAMILIES: Dict[str, str] = {
    "regression": "an MLP on a nonlinear regression task, a loss every step",
    "classification": "a teacher network's labels, a loss every step",
    "epochs": "one record per epoch (Keras CSVLogger style), 5-300 epochs, no task declared, no model",
    "schedules": "warm-up, cosine, step-decay and one-cycle schedules, the learning rate logged",
    "finetune": "fine-tuning from a good start (a model trained first, off the record)",
    "label_noise": "labels partly replaced by random ones: a training loss that cannot reach 0",
    "imbalance": "one class far more frequent than the others",
    "nontrend": "losses with no monotone trend: a policy gradient (RL-like) and a GAN",
    "saddle": "deep linear nets from a small initialisation: plateaus that break",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    #: expected ``kind`` of the run's final verdict, or ``"healthy"``
    label: str
    #: expected ``symptom`` (informative; the bench reports it, does not score it)
    symptom: Optional[str] = None
    #: runs of one experiment: scenarios with the same group are generated
    #: together and share a ``data`` key
    group: Optional[str] = None
    #: how the onset is found: "start" (wrong from step 0), "non_finite" (the
    #: first non-finite loss), "val_turn" (the validation loss clearly turned)
    onset: str = "start"
    description: str = ""
    #: the family (:data:`FAMILIES`) it belongs to
    family: str = ""
    options: Dict[str, object] = field(default_factory=dict)


def _s(name, label, symptom=None, group=None, onset="start", description="") -> tuple:
    return (name, label, symptom, group, onset, description)


def _family(family: str, *entries: tuple) -> List[Tuple[str, Scenario]]:
    return [(e[0], Scenario(*e, family=family)) for e in entries]


_OPT, _DIV, _OVER, _MIS, _BIAS = "optimization", "divergence", "overfitting", "mismatch", "model_bias"

SCENARIOS: Dict[str, Scenario] = dict([
    *_family(
        "regression",
        _s("healthy_noisy", HEALTHY, description="MLP regression, minibatches of 8: a noisy but falling loss"),
        _s("healthy_spike", HEALTHY, description="as healthy_noisy, with three corrupted batches at 45% of the run: "
                                                 "a loss spike that recovers"),
        _s("healthy_late", HEALTHY, description="a learning-rate warm-up from ~0: the loss sits at its initial value "
                                                "for the first 16% of the run, then falls"),
        _s("healthy_sgd", HEALTHY, description="SGD with momentum on the same task"),
        _s("healthy_wide", HEALTHY, description="one wide ReLU layer, AdamW"),
        _s("bias_linear", _BIAS, group="bias", description="a linear model on a nonlinear regression task"),
        _s("bias_mlp", HEALTHY, group="bias", description="an MLP on the same task, which fits it"),
        _s("dead_relu", _OPT, "dead_units", description="ReLU MLP whose hidden biases start at -8: every hidden "
                                                        "unit dead"),
        _s("lr_oscillating", _OPT, "oscillation",
           description="Adam whose learning rate alternates every 10 steps between 0.003 and a far-too-large 0.2: "
                       "the loss swings without progress"),
        _s("diverge_nan", _DIV, "non_finite", onset="non_finite",
           description="SGD with a learning rate too large for unnormalised inputs: the loss explodes to NaN"),
        _s("overfit", _OVER, onset="val_turn",
           description="a wide MLP on 24 noisy samples: training loss falls, validation loss turns up"),
        _s("mismatch", _MIS, description="the test split's inputs are shifted; the validation split is drawn like "
                                         "the training data"),
    ),
    *_family(
        "classification",
        _s("healthy_gap", HEALTHY, description="classification on 384 samples with weight decay: a mild, stable "
                                               "generalisation gap"),
        _s("opt_shallow", HEALTHY, group="opt", description="a 3-layer tanh net, SGD: trains"),
        _s("opt_deep", _OPT, "vanishing_gradients", group="opt",
           description="a 20-layer plain sigmoid net on the same data: more flexible, yet a higher training loss"),
        _s("lr_small", _OPT, "lr_too_small", description="SGD with a learning rate of 1e-6"),
        _s("cv_fold", HEALTHY, group="cv", description="one fold of a 5-fold cross-validation (--fold K)"),
    ),
    *_family(
        "epochs",
        _s("ep_short", HEALTHY, description="5 epochs of a 10-class MLP: too early to judge, nothing wrong"),
        _s("ep_healthy", HEALTHY, description="40 epochs, Adam: the loss and the accuracy improve"),
        _s("ep_long", HEALTHY, description="300 epochs, large batches: long converged tail"),
        _s("ep_binary", HEALTHY, description="a binary task, 30 epochs"),
        _s("ep_sgd", HEALTHY, description="SGD with momentum, 80 epochs"),
        _s("ep_noisy_val", HEALTHY, description="a validation set of 40 samples: a noisy validation curve"),
        _s("ep_wide", HEALTHY, description="a wide hidden layer, 30 epochs"),
        _s("ep_regression", HEALTHY, description="per-epoch regression, 120 epochs"),
        _s("ep_overfit", _OVER, onset="val_turn", description="a big MLP on 128 samples, 30% of them mislabelled"),
        _s("ep_overfit_mild", _OVER, onset="val_turn", description="512 samples, 10% mislabelled, a smaller net: a milder turn"),
        _s("ep_chance", _OPT, "at_chance", description="all-zero initialisation: at chance for 100 epochs"),
        _s("ep_chance_long", _OPT, "at_chance", description="all-zero initialisation, SGD: at chance for 250 "
                                                            "epochs"),
        _s("ep_explode_mild", _DIV, "exploding_loss", description="full-batch descent just past the stable step: "
                                                                  "the loss grows ~1e6-fold in 60 epochs, finite"),
        _s("ep_explode_severe", _DIV, "exploding_loss", description="the same far past it: ~1e27-fold, finite"),
        _s("ep_nan", _DIV, "non_finite", onset="non_finite", description="the same, growing past float32: NaN"),
        _s("ep_lr_huge", _OPT, "oscillation", description="Adam at a learning rate of 1: a jump in the first epoch, "
                                                          "then the loss bounces near ln C and the accuracy falls "
                                                          "to chance"),
        _s("ep_crawl", _OPT, "lr_too_small", description="Adam at 1e-5: the loss crawls down from epoch 0"),
        _s("ep_healthy_acc", HEALTHY, description="ep_healthy whose evaluations log their accuracy alone (no "
                                                  "validation loss)"),
        _s("ep_noisy_val_acc", HEALTHY, description="ep_noisy_val (40 validation samples) logging validation "
                                                    "accuracy alone"),
        _s("ep_overfit_acc", _OVER, onset="val_turn", description="ep_overfit logging validation accuracy alone: "
                                                                  "it peaks and falls"),
        _s("ep_overfit_mild_acc", _OVER, onset="val_turn", description="ep_overfit_mild logging validation "
                                                                       "accuracy alone"),
    ),
    *_family(
        "schedules",
        _s("sch_warmup_cosine", HEALTHY, description="linear warm-up over 10% of the run, then cosine decay to 0"),
        _s("sch_step_decay", HEALTHY, description="SGD, the learning rate divided by 10 at 50% and 75%: flat after "
                                                  "the last decay (the end of training, not a stall)"),
        _s("sch_cosine_flat", HEALTHY, description="cosine decay that reaches 0 at 60% of the run, then nothing "
                                                   "moves"),
        _s("sch_onecycle", HEALTHY, description="one-cycle: up to a large learning rate and down again"),
        _s("sch_warmup_rise", HEALTHY, description="from a trained model, a warm-up to a larger rate: training and "
                                                   "validation losses rise together, then fall"),
        _s("sch_crawl", _OPT, "lr_too_small", description="warm-up and cosine with a peak of 3e-6: a crawl"),
        _s("sch_zero_lr", _OPT, "stalled", description="a schedule bug: the learning rate is 0 after a 10-step "
                                                       "warm-up; the loss stays near ln C"),
        _s("sch_osc_high", _OPT, "oscillation", description="Adam at a constant rate of 1 on a harder task: the loss "
                                                            "bounces around its start for the whole run"),
        _s("sch_peak_nan", _DIV, "non_finite", onset="non_finite",
           description="a warm-up to a peak of 20: NaN before the peak"),
        _s("sch_blowup", _DIV, "exploding_loss", description="three first steps at a huge rate: the loss jumps "
                                                             "~500x and stays there, finite, creeping down"),
    ),
    *_family(
        "finetune",
        _s("ft_healthy", HEALTHY, description="fine-tuning a trained model on shifted data: starts low, improves "
                                              "a little"),
        _s("ft_head", HEALTHY, description="only the last layer is trained"),
        _s("ft_short", HEALTHY, description="100 steps of fine-tuning"),
        _s("ft_overfit", _OVER, onset="val_turn", description="fine-tuning on 32 samples: validation turns up"),
        _s("ft_lr_large", _OPT, "oscillation", description="fine-tuning at the pretraining's SGD rate: the loss "
                                                            "jumps in the first steps, then sits at ln C, ~10x its "
                                                            "start, for good"),
        _s("ft_forget", _MIS, description="fine-tuned on new labels; the test split is the old task: the test loss "
                                          "rises from its first evaluation while validation falls"),
    ),
    *_family(
        "label_noise",
        _s("ln_noise20", HEALTHY, description="20% of the labels random: the loss levels off well above 0"),
        _s("ln_noise35", HEALTHY, description="35% random: higher still, the model is not to blame"),
        _s("ln_regularised", HEALTHY, description="35% random, a big model with strong weight decay"),
        _s("ln_bias_linear", _BIAS, group="ln_bias", description="a linear model, 10% random labels"),
        _s("ln_bias_mlp", HEALTHY, group="ln_bias", description="an MLP on the same data"),
        _s("ln_overfit", _OVER, onset="val_turn", description="a big MLP memorises 256 samples, 35% random"),
    ),
    *_family(
        "imbalance",
        _s("im_healthy", HEALTHY, description="4 classes in proportions 85/10/3/2"),
        _s("im_weighted", HEALTHY, description="the same with class-weighted cross-entropy"),
        _s("im_collapsed", _OPT, "collapsed", description="every hidden unit dead: the model predicts the prior, "
                                                          "the loss is the same to many digits for most of 1,000 steps"),
        _s("im_label_shift", _MIS, description="the test split is balanced: high from the start while the "
                                               "validation split, drawn like the training data, is fine"),
    ),
    *_family(
        "nontrend",
        _s("rl_bandit", HEALTHY, description="REINFORCE on a contextual bandit, advantages normalised: the policy "
                                             "loss is noisy, below 0, with no meaningful level; the reward rises"),
        _s("rl_entropy", HEALTHY, description="the same with an entropy bonus and a learned baseline"),
        _s("gan_mixture", HEALTHY, description="a small GAN on a 1-D mixture: discriminator and generator losses "
                                               "swing around their equilibrium"),
        _s("gan_slow", HEALTHY, description="the same at a lower rate, a longer run"),
        _s("rl_diverge", _DIV, "non_finite", onset="non_finite",
           description="REINFORCE with log(softmax), its rate raised 2000-fold at step 200: NaN"),
        _s("gan_diverge", _DIV, "exploding_loss", description="a discriminator at a far too large rate: its loss "
                                                              "explodes"),
    ),
    *_family(
        "saddle",
        _s("sd_break_early", HEALTHY, description="a 4-layer linear net: a short plateau, then the loss drops"),
        _s("sd_break_late", HEALTHY, description="a smaller start: the plateau lasts a quarter of the run or more, then breaks"),
        _s("sd_two_stages", HEALTHY, description="two modes of very different strength: two plateaus, two drops"),
        _s("sd_pair_shallow", HEALTHY, group="sd_pair", description="a 2-layer linear net: trains"),
        _s("sd_pair_deep", _OPT, "flexibility_inversion", group="sd_pair",
           description="an 8-layer linear net from a tiny start on the same data: stuck above the shallow one"),
        _s("sd_never", _OPT, "stalled", description="a 6-layer net from a tinier start: the plateau never breaks"),
    ),
])
