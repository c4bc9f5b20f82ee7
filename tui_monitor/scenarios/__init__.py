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
from typing import Dict, Optional, Tuple

__all__ = ["Scenario", "SCENARIOS", "HEALTHY"]

#: The label of a run that should raise nothing at warning level or above.
HEALTHY = "healthy"


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
    options: Dict[str, object] = field(default_factory=dict)


def _s(name, label, symptom=None, group=None, onset="start", description="", **options) -> Tuple[str, Scenario]:
    return name, Scenario(name, label, symptom, group, onset, description, dict(options))


SCENARIOS: Dict[str, Scenario] = dict([
    _s("healthy_noisy", HEALTHY, description="MLP regression, minibatches of 8: a noisy but falling loss"),
    _s("healthy_spike", HEALTHY, description="as healthy_noisy, with three corrupted batches at 45% of the run: "
                                             "a loss spike that recovers"),
    _s("healthy_late", HEALTHY, description="a learning-rate warm-up from ~0: the loss sits at its initial value "
                                            "for the first 16% of the run, then falls"),
    _s("healthy_gap", HEALTHY, description="classification on 384 samples with weight decay: a mild, stable "
                                           "generalisation gap"),
    _s("bias_linear", "model_bias", group="bias", description="a linear model on a nonlinear regression task"),
    _s("bias_mlp", HEALTHY, group="bias", description="an MLP on the same task, which fits it"),
    _s("opt_shallow", HEALTHY, group="opt", description="a 3-layer tanh net, SGD: trains"),
    _s("opt_deep", "optimization", "vanishing_gradients", group="opt",
       description="a 20-layer plain sigmoid net on the same data: more flexible, yet a higher training loss"),
    _s("dead_relu", "optimization", "dead_units", description="ReLU MLP whose hidden biases start at -8: "
                                                              "every hidden unit dead"),
    _s("lr_small", "optimization", "lr_too_small", description="SGD with a learning rate of 1e-6"),
    _s("lr_oscillating", "optimization", "oscillation",
       description="Adam whose learning rate alternates every 10 steps between 0.003 and a far-too-large 0.2: "
                   "the loss swings without progress"),
    _s("diverge_nan", "divergence", "non_finite", onset="non_finite",
       description="SGD with a learning rate too large for unnormalised inputs: the loss explodes to NaN"),
    _s("overfit", "overfitting", onset="val_turn",
       description="a wide MLP on 24 noisy samples: training loss falls, validation loss turns up"),
    _s("mismatch", "mismatch", description="the test split's inputs are shifted; the validation split is "
                                           "drawn like the training data"),
    _s("cv_fold", HEALTHY, group="cv", description="one fold of a 5-fold cross-validation (--fold K)"),
])
