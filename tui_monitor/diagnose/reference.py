"""What a training loss is judged against, and which runs are comparable.

* the trivial loss of the declared task (config keys, see docs/diagnosis.md):
  ``ln C`` for C-class cross-entropy, the target variance for MSE;
* the run's flexibility (parameters, depth) from its header, to order runs;
* the baseline: the run the user marked (``Diagnoser(baseline=...)`` or the
  header tag ``baseline: true``);
* groups of runs of the same data: the ``data``/``dataset`` config key or
  tag; runs with neither form one group, "all runs in the view".
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

__all__ = ["Task", "task_of", "flexibility", "more_flexible", "data_key", "is_baseline", "NO_DATA_KEY"]

NO_DATA_KEY = "(runs without a data key)"

_CLASS_KEYS = ("num_classes", "n_classes", "classes", "num_labels", "n_labels")
_VAR_KEYS = ("target_var", "target_variance", "label_var", "y_var")
_TASK_KEYS = ("task", "objective", "problem")


class Task:
    """The declared task and its trivial loss (the loss of the best constant
    prediction), or ``trivial is None`` when it is not known; ``classes``
    is C for a C-class classification when known (chance accuracy is 1/C);
    ``declared`` is False when inferred from the run's start."""

    __slots__ = ("kind", "trivial", "why", "classes", "declared")

    def __init__(self, kind: Optional[str], trivial: Optional[float], why: str, classes: Optional[int] = None,
                 declared: bool = True) -> None:
        self.kind = kind
        self.trivial = trivial
        self.why = why
        self.classes = classes
        self.declared = declared

    def __repr__(self) -> str:
        return f"Task({self.kind!r}, trivial={self.trivial!r})"


def _lookup(d: Dict[str, Any], keys) -> Any:
    for k in keys:
        if k in d:
            return d[k]
    return None


def _num(v) -> Optional[float]:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)) and math.isfinite(float(v)):
        return float(v)
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def task_of(run, override: Optional[Dict[str, Any]] = None) -> Task:
    """The run's task from its config (``override``, e.g. from the command
    line, wins key by key)."""
    cfg = dict(run.config or {})
    if override:
        cfg.update({k: v for k, v in override.items() if v is not None})
    kind = _lookup(cfg, _TASK_KEYS)
    kind = str(kind).lower() if isinstance(kind, str) else None
    classes = _num(_lookup(cfg, _CLASS_KEYS))
    if kind in ("classification", "classify", "multiclass", "binary", "ce", "cross_entropy") or (
            kind is None and classes is not None):
        if kind == "binary" and classes is None:
            classes = 2.0
        if classes is not None and classes >= 2 and float(classes).is_integer():
            return Task("classification", math.log(classes),
                        f"ln {int(classes)} = {math.log(classes):.4g}, the cross-entropy of a uniform guess over "
                        f"{int(classes)} classes", classes=int(classes))
        return Task("classification", None, "classification without num_classes: no trivial loss")
    if kind in ("regression", "mse", "l2"):
        var = _num(_lookup(cfg, _VAR_KEYS))
        if var is not None and var > 0:
            return Task("regression", var, f"the target variance {var:.4g}, the MSE of predicting the mean")
        return Task("regression", None, "regression without target_var: no trivial loss")
    if kind is None:
        inferred = infer_task(run)
        if inferred is not None:
            return inferred
    return Task(kind, None, "no task declared")


#: Class counts whose uniform-guess loss ln C is inferred from a run's start.
#: Only where neighbours' ln C lie far enough apart for the tolerance below to
#: tell them apart (2..10), plus the common 100 and 1000.
INFER_CLASSES = tuple(range(2, 11)) + (100, 1000)
INFER_TOLERANCE = 0.002
#: with a starting accuracy at chance (at most 2/C) as well, the tolerance on ln C widens to this:
#: two independent signs of a freshly initialised C-class classifier
INFER_TOLERANCE_WITH_ACCURACY = 0.02


def first_accuracy(run) -> Optional[float]:
    """The first value of the run's accuracy (train, else val), if logged."""
    from .signals import pick_accuracy

    for split in ("train", "val"):
        name = pick_accuracy(run, split)
        if name is None:
            continue
        series = run.get(name, split)
        if series is not None and len(series):
            v = float(series.values[0])
            if math.isfinite(v):
                return v / 100.0 if v > 1.0 else v
    return None


def infer_task(run) -> Optional[Task]:
    """Classification with C classes, inferred when no task is declared and
    the median of the first three training losses is within 0.2% of ln C
    (or within 2% with the first accuracy at most 2/C): a freshly
    initialised classifier starts at the uniform guess. Anything less exact
    is left undeclared: a wrong trivial loss would cry wolf."""
    series = (getattr(run, "series", None) or {}).get(("train", "loss"))
    if series is None or len(series) < 3:
        return None
    first = sorted(float(v) for v in series.values[:3])
    v = first[1]
    if not math.isfinite(v) or v <= 0:
        return None
    acc = None
    for c in INFER_CLASSES:
        ln = math.log(c)
        off = abs(v - ln) / ln
        if off > INFER_TOLERANCE_WITH_ACCURACY:
            continue
        if off > INFER_TOLERANCE:
            if acc is None:
                acc = first_accuracy(run)
                acc = -1.0 if acc is None else acc
            if not 0.0 <= acc <= 2.0 / c:
                continue
            also = f" and the first accuracy ({acc:.3g}) at chance"
        else:
            also = ""
        return Task("classification", ln,
                    f"ln {c} = {ln:.4g}: inferred, since the first training losses ({v:.4g}) sit at the "
                    f"cross-entropy of a uniform guess over {c} classes{also} (declare task and num_classes "
                    f"in the config to be sure)", classes=c, declared=False)
    return None


def flexibility(run) -> Tuple[float, float]:
    """(trainable parameters, depth), NaN where unknown."""
    m = run.model or {}
    p = _num(m.get("trainable_params"))
    if p is None:
        p = _num(m.get("params"))
    d = _num(m.get("depth"))
    return (p if p is not None else math.nan, d if d is not None else math.nan)


def more_flexible(a, b) -> bool:
    """True when run ``a`` is clearly more flexible than ``b``: at least 20%
    more parameters and no shallower (or, parameters unknown, deeper)."""
    pa, da = flexibility(a)
    pb, db = flexibility(b)
    if not math.isnan(pa) and not math.isnan(pb):
        if pa < 1.2 * pb:
            return False
        return math.isnan(da) or math.isnan(db) or da >= db
    if not math.isnan(da) and not math.isnan(db):
        return da > db
    return False


def data_key(run) -> str:
    for src in (run.config or {}, run.tags or {}):
        for k in ("data", "dataset"):
            v = src.get(k)
            if v is not None and not isinstance(v, (dict, list)):
                return str(v)
    return NO_DATA_KEY


def names_run(run, marked: Optional[str]) -> bool:
    """Whether ``marked`` (``--baseline``) names ``run``: its id, its name or
    ``run_id#rank``."""
    return marked is not None and marked in (run.run_id, run.name, f"{run.run_id}#{run.rank}")


def run_ref(run) -> str:
    """What names ``run`` alone: its id, with ``#rank`` for one rank of a job."""
    return f"{run.run_id}#{run.rank}" if (getattr(run, "world_size", 1) or 1) > 1 else run.run_id


def is_baseline(run, marked: Optional[str]) -> bool:
    if names_run(run, marked):
        return True
    tag = (run.tags or {}).get("baseline")
    return tag is True or (isinstance(tag, str) and tag.lower() in ("true", "yes", "1"))
