"""Which way a metric improves, from its name: lower for losses and errors,
higher for accuracy-like scores. One small function for everything that needs
it (the chart's best marker, a diagnosis scoring a metric). Standard library
only.

The name is split into words (``val/top1_acc`` -> val, top1, acc;
``valAccuracy`` -> val, accuracy) and the last word that names a known metric
decides (``acc_error`` is an error). A name with no known word has no
direction: callers say so rather than guess.
"""
from __future__ import annotations

import re
from typing import Optional

__all__ = ["LOWER", "HIGHER", "words", "direction", "higher_is_better"]

LOWER = "lower"
HIGHER = "higher"

_LOWER_WORDS = frozenset("""
loss losses error errors err wer cer perplexity ppl mse mae rmse rmsle mape smape nll bpd bpc
distance dist fid kl divergence regret latency
""".split())
_HIGHER_WORDS = frozenset("""
acc accuracy top1 top5 top-1 top-5 f1 fscore f1score auc auroc roc rocauc auprc prauc map map50 map75 ap ap50 ap75
bleu rouge rouge1 rouge2 rougel rougelsum meteor chrf recall precision sensitivity specificity iou miou jaccard
dice psnr ssim r2 ndcg mrr hit hits hitrate kappa mcc reward return score
""".split())

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def words(name: str):
    """Lower-case words of a metric name, glued digits kept (``top1``, ``f1``,
    ``map50``, ``rouge2``): split on anything but letters and digits, and at
    camelCase boundaries."""
    out = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        if not part:
            continue
        tokens = _WORD.findall(part)
        # a word and the digits after it stay one word (top1, f1, map50)
        merged = []
        for t in tokens:
            if t.isdigit() and merged:
                merged[-1] += t
            else:
                merged.append(t)
        out.extend(t.lower() for t in merged)
        if len(merged) > 1:
            out.append(part.lower())  # the whole part too: "mAP", "rougeL", "F1Score"
    return out


def direction(name: str) -> Optional[str]:
    """:data:`LOWER`, :data:`HIGHER` or None (not a metric name we know)."""
    found = None
    for word in words(str(name)):
        if word in _LOWER_WORDS:
            found = LOWER
        elif word in _HIGHER_WORDS:
            found = HIGHER
        else:
            stem = word.rstrip("0123456789")
            if stem in _LOWER_WORDS:
                found = LOWER
            elif stem in _HIGHER_WORDS:
                found = HIGHER
    return found


def higher_is_better(name: str) -> Optional[bool]:
    """True for accuracy-like names, False for losses and errors, None when
    the name does not say."""
    d = direction(name)
    return None if d is None else d == HIGHER
