"""What the engine says: :class:`Finding`, and the vocabulary it uses.

Every finding names the step of the method (../shared/guidance.md) it comes
from (``guidance_step``), the evidence that put it there (numbers and steps,
structured and in words), how sure it is, and the cure the method recommends.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["Finding", "KINDS", "SYMPTOMS", "SEVERITIES", "GUIDANCE", "ADVICE", "severity_rank", "run_label"]

#: The causes the method names, plus divergence (a live symptom bad enough to be its own kind) and
#: distributed (what only a multi-rank view shows: a job whose ranks straggle, hang, crash or disagree).
KINDS = ("model_bias", "optimization", "overfitting", "mismatch", "divergence", "distributed")

#: Finer symptoms a finding may carry.
SYMPTOMS = (
    "non_finite", "exploding_loss", "vanishing_gradients", "exploding_gradients", "dead_units", "lr_too_small",
    "oscillation", "stalled", "crawl", "collapsed", "at_chance", "score_flat", "score_fell", "flexibility_inversion", "plateau",
    "validation_turned", "test_shift", "test_rises", "persistent_gap", "straggler", "hung_rank", "job_hung", "rank_divergence", "rank_crashed",
)

#: In increasing order of urgency.
SEVERITIES = ("info", "warning", "critical")

#: The step of the method each kind belongs to (guidance.md section and question).
GUIDANCE = {
    "model_bias": "1. Training loss large -> model bias (the model is not flexible enough)",
    "optimization": "1. Training loss large -> optimization (a good function exists; the optimizer did not find it)",
    "divergence": "1. Training loss large -> optimization, live symptom: divergence",
    "overfitting": "2. Training loss small, held-out loss large -> overfitting",
    "mismatch": "2. Training loss small, held-out loss large -> mismatch",
    "distributed": "1. Training loss large -> optimization, live symptom of a multi-rank job: ranks that straggle, "
                   "hang, crash or disagree keep the optimizer from running (or from running right)",
}

#: The cure the method recommends, per kind and (where it differs) per symptom.
ADVICE = {
    "model_bias": "Give the model more flexibility: more input features, more units, more layers. "
                  "A bigger model that reaches a lower training loss confirms model bias.",
    "optimization": "Fix the optimizer set-up: learning rate and schedule, initialisation, normalisation, "
                    "residual connections. A more flexible model should reach at least the training loss of a "
                    "smaller one.",
    "divergence": "Stop and restart from the last good checkpoint with a smaller learning rate (or warm-up, "
                  "gradient clipping); look for bad inputs at the step where it began.",
    "overfitting": "Keep the checkpoint with the best held-out loss (early stopping); then more data or "
                   "augmentation, less flexibility (fewer or shared parameters), or regularisation.",
    "mismatch": "Training and held-out data come from different distributions: more data of the same kind "
                "will not help. Look at how the held-out data were produced and make training data like it.",
    ("optimization", "vanishing_gradients"): "The first layers barely learn: use ReLU-family activations, a "
                                             "better initialisation, normalisation layers or residual connections; "
                                             "or a shallower model.",
    ("optimization", "dead_units"): "Most units never activate: lower the learning rate, fix the initialisation "
                                    "(biases, He init), or use LeakyReLU/GELU.",
    ("optimization", "lr_too_small"): "The weights barely move: raise the learning rate (try x10 steps) or use an "
                                      "adaptive optimizer.",
    ("optimization", "oscillation"): "The loss swings without progress: lower the learning rate (or its peak in "
                                     "the schedule), add warm-up or gradient clipping.",
    ("optimization", "exploding_gradients"): "Clip gradients, lower the learning rate, add normalisation.",
    ("optimization", "crawl"): "Raise the learning rate (try x10 steps, or a learning-rate range test) or use an "
                               "adaptive optimizer; if the rate is right, train much longer.",
    ("optimization", "collapsed"): "The output no longer depends on the input: look for dead units (ReLU biases, "
                                   "too large a learning rate early on), a saturated output layer, a learning "
                                   "rate of zero or frozen weights; restart from a checkpoint before the collapse.",
    ("optimization", "at_chance"): "The model predicts no better than a guess: check the labels match the inputs "
                                   "(shuffling, a join), then the learning rate (too large or zero) and the "
                                   "initialisation.",
    ("optimization", "score_flat"): "The model predicts the same class whatever the input: look for dead units, "
                                    "a learning rate far too large or zero, and class imbalance.",
    ("optimization", "score_fell"): "Lower the learning rate (or its peak), add warm-up or gradient clipping; "
                                    "restart from the checkpoint where the training score was best.",
    "distributed": "Fix the job before judging its loss: find the rank named first and look at its host, its "
                   "data and its log.",
    ("distributed", "straggler"): "Look at that rank's host: data loading (more workers, local copy of the data), "
                                  "a throttled or shared device, a noisy neighbour. Every rank waits for it at each "
                                  "collective.",
    ("distributed", "hung_rank"): "Dump that rank's stack (py-spy dump --pid PID) to see where it waits; the "
                                  "others will block at the next collective. Set a timeout on the process group.",
    ("distributed", "job_hung"): "Dump every rank's stack (py-spy dump --pid PID on each node): the rank that is not "
                                 "in the collective the others wait in is the culprit (a rank skipping a step, a "
                                 "data-dependent branch, an uneven last batch). TORCH_DISTRIBUTED_DEBUG=DETAIL and a "
                                 "process-group timeout turn the hang into an error that names it.",
    ("distributed", "rank_divergence"): "Check that rank's data shard (DistributedSampler with set_epoch, same "
                                        "preprocessing) and device; with DDP the replicas must start from the same "
                                        "weights (broadcast at wrap time) and stay in sync.",
    ("distributed", "rank_crashed"): "Read the first rank's error (its log, or the end record); the others' errors "
                                     "are only the consequence. Restart from the last checkpoint (torchrun "
                                     "--max-restarts, elastic) once the cause is fixed.",
}

_SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    return _SEV_RANK.get(severity, 0)


def run_label(run) -> str:
    """A run's short name for messages: its name, with the rank when it has several."""
    name = getattr(run, "name", None) or getattr(run, "run_id", "?")
    ws = getattr(run, "world_size", 1) or 1
    return f"{name}[rank {run.rank}]" if ws > 1 else str(name)


@dataclass
class Finding:
    """One thing the engine says about one run (or a group of runs).

    ``runs`` lists ``(run_id, rank)`` keys, the run the finding is about
    first, then the runs it was compared with. ``step`` is where the problem
    began (the first step of the evidence), ``evidence`` the numbers and steps
    behind it, ``explanation`` the same in plain words. ``id`` is stable while
    the finding evolves (same kind, symptom and runs), so a UI can follow it.
    """

    kind: str
    symptom: Optional[str]
    runs: List[Tuple[str, int]]
    run_names: List[str]
    step: Optional[int]
    severity: str
    confidence: float
    evidence: Dict[str, Any]
    explanation: str
    advice: str
    guidance_step: str
    also_possible: List[str] = field(default_factory=list)
    #: the step of the last record the finding was (re)computed from
    seen_at_step: Optional[int] = None
    #: the onset follows the evidence (overfitting's moves with the best
    #: evaluation) instead of keeping the earliest one seen
    onset_moves: bool = False
    #: the id names only the run it is about: the runs cited with it come and
    #: go (the ranks still finite at a bad rank's step)
    about_first: bool = False

    @property
    def id(self) -> str:
        keys = "|".join(f"{r}#{k}" for r, k in (self.runs[:1] if self.about_first else self.runs))
        return f"{self.kind}/{self.symptom or '-'}/{keys}"

    @property
    def run(self) -> Tuple[str, int]:
        """The run the finding is about."""
        return self.runs[0]

    @property
    def about(self) -> str:
        """The name of the run the finding is about."""
        return self.run_names[0] if self.run_names else (self.runs[0][0] if self.runs else "?")

    @property
    def compared_with(self) -> List[str]:
        """The names of the runs it was compared with (cited, not accused)."""
        return list(self.run_names[1:])

    def headline(self, clean=str) -> str:
        """``kind/symptom  RUN`` (``RUN (compared with A, B)`` when other
        runs are cited): the run it is about, never the comparison runs as
        if they were bad too. ``clean`` escapes names for a terminal."""
        sym = f"/{self.symptom}" if self.symptom else ""
        who = clean(self.about)
        if self.compared_with:
            who += f" (compared with {', '.join(clean(n) for n in self.compared_with)})"
        return f"{self.kind}{sym}  {who}"

    def same_as(self, other: "Finding") -> bool:
        """True when nothing a reader would see changed (evidence included)."""
        return (self.severity == other.severity and round(self.confidence, 2) == round(other.confidence, 2)
                and self.step == other.step and self.explanation == other.explanation)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["id"] = self.id
        d["runs"] = [{"run_id": r, "rank": k, "name": n} for (r, k), n in zip(self.runs, self.run_names)]
        del d["run_names"], d["onset_moves"], d["about_first"]
        d["confidence"] = round(float(self.confidence), 3)
        d["evidence"] = _jsonable(self.evidence)
        return d


def make_finding(kind: str, symptom: Optional[str], runs, step, severity: str, confidence: float,
                 evidence: Dict[str, Any], explanation: str, also_possible=(), advice: Optional[str] = None,
                 seen_at_step=None, onset_moves: bool = False, about_first: bool = False) -> Finding:
    keys = [r.key for r in runs]
    names = [run_label(r) for r in runs]
    return Finding(kind=kind, symptom=symptom, runs=keys, run_names=names, step=None if step is None else int(step),
                   severity=severity, confidence=max(0.0, min(1.0, float(confidence))), evidence=evidence,
                   explanation=explanation,
                   advice=advice or ADVICE.get((kind, symptom)) or ADVICE[kind], guidance_step=GUIDANCE[kind],
                   also_possible=list(also_possible), seen_at_step=seen_at_step, onset_moves=onset_moves,
                   about_first=about_first)


def _jsonable(x: Any) -> Any:
    """Evidence as JSON-safe values: floats rounded to 6 significant digits,
    non-finite floats as the stream format's strings."""
    import math

    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float) or hasattr(x, "item"):
        try:
            v = float(x)
        except (TypeError, ValueError):
            return str(x)
        if v != v:
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if isinstance(x, int) or (hasattr(x, "dtype") and getattr(x.dtype, "kind", "") in "iu"):
            return int(v)
        return float(f"{v:.6g}")
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return str(x)
