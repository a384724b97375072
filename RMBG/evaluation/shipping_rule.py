"""The shipping rule of issue 38: may a candidate replace ``Data/models/rmbg-default.keras``?

A candidate replaces the default only if, on the validation part,

1. it **beats** the default **overall** on MAE (lower) **and** max-F (higher):
   the point figures of the whole part, strictly, unrounded; an equal figure
   is a tie and a tie is refused (a replacement has to be better; a
   procedural reason never replaces a model, nor a coin flip);
2. it is **no worse than noise in any category**, on MAE and on max-F: a
   category fails when the candidate is *worse beyond noise* there.

Noise is a **paired bootstrap over photos**: each draw resamples the photos
with replacement (within each category, each category keeping its size: the
split is stratified, so the category mix is fixed by design, not by chance),
and scores *both* models on the *same* resample, so the photo-to-photo
difficulty both models share cancels out. For each draw the set figures are
recomputed the way :func:`RMBG.evaluation.metrics.summarize` computes them:
MAE is the mean of per-image MAE, max-F the **maximum of the mean of the
per-image F curves** (256 thresholds), never the mean of per-image max-F. A
draw's statistic is ``d = candidate - default``.

A category is **worse beyond noise** when the one-sided ``confidence``
(default 95 %) percentile interval of ``d`` lies entirely on the worse side:
for MAE (lower is better) when the 5th percentile of ``d`` is above 0, for
max-F when the 95th percentile is below 0. In words: fewer than 5 % of
resamples show the candidate no worse. Why this test:

* *paired* and *over photos*: photos are the unit that varies between
  validation sets, and pairing removes what both models find hard, so the
  test sees the models' difference, not the photos' spread;
* *one-sided*: the rule only guards against regressions; being better in a
  category needs no test;
* *percentile bootstrap*: max-F of a set has no closed-form variance (a max
  over thresholds of a mean of curves), the bootstrap handles it and MAE the
  same way;
* *no multiple-comparison correction* (2 figures x each category, each at
  95 %): the rule protects the shipped default, so a test that flags a true
  regression more readily is the safer error; its price is that a candidate
  *equal* to the default in every category is refused more often than 5 %
  (it also fails condition 1, though). A candidate only needs to show no
  regression beyond what 39-80 photos a category can resolve.
* 10,000 draws, seed 0 (:data:`DRAWS`, :data:`SEED`): the percentiles move by
  well under their own width between seeds, and the verdict is reproducible.

The overall figures also get a bootstrap interval in the verdict, reported for
information only: condition 1 is on the point figures (the issue's "beats").

Pure numpy: the inputs are :class:`RMBG.evaluation.score_file.ScoreTable` s,
read from two evaluation outputs (``per_image_curves.npz``) by ``rmbg compare``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

from RMBG.evaluation.score_file import ScoreFileError, ScoreTable

#: Bootstrap resamples, their seed and the one-sided confidence of the noise test.
DRAWS = 10_000
SEED = 0
CONFIDENCE = 0.95
#: The two figures of the rule, and which way is better (+1: higher, -1: lower).
RULE_METRICS = {"mae": -1, "max_f": +1}
OVERALL = "all"
#: Resamples scored at once (bounds memory: CHUNK x photos weights, CHUNK x 256 curves).
CHUNK = 1_000


@dataclass(frozen=True)
class Check:
    """One condition of the rule: a figure (``metric``) on a set (``scope``: ``"all"`` or a category).

    ``difference`` is ``candidate - default`` on the full set; ``bound`` the
    finite end of the one-sided bootstrap interval of that difference (its
    lower end for MAE, upper end for max-F: the end nearest "better");
    ``worse_share`` the share of resamples in which the candidate is worse.
    ``needs`` is ``"better"`` (overall) or ``"not worse beyond noise"`` (a category).
    """

    scope: str
    metric: str
    photos: int
    default: float
    candidate: float
    difference: float
    bound: float
    worse_share: float
    needs: str
    passed: bool

    @property
    def interval(self) -> str:
        """The one-sided interval as text, e.g. ``>= -0.0012`` (MAE) or ``<= +0.0030`` (max-F)."""
        side = ">=" if RULE_METRICS[self.metric] < 0 else "<="
        return f"{side} {self.bound:+.6f}"


@dataclass(frozen=True)
class Verdict:
    """The rule's answer: ``accept``, the reason in words, and every check with its figures."""

    accept: bool
    reason: str
    candidate: str
    default: str
    photos: int
    draws: int
    confidence: float
    seed: int
    checks: tuple[Check, ...]

    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["checks"] = [{**asdict(c), "interval": c.interval} for c in self.checks]
        return data

    def table(self) -> str:
        """The verdict as a fixed-width text table, then the verdict line."""
        pct = f"{self.confidence:.0%}"
        head = (f"{'scope':<8}{'photos':>7}  {'metric':<6}{'default':>10}{'candidate':>11}{'cand-def':>11}"
                f"  {'one-sided ' + pct + ' interval':<24}{'worse in':>9}  {'needs':<23}result")
        lines = [f"shipping rule: candidate {self.candidate} against default {self.default}, {self.photos} photos;"
                 f" paired bootstrap over photos within categories, {self.draws} draws, seed {self.seed}",
                 head, "-" * len(head)]
        for c in self.checks:
            lines.append(
                f"{c.scope:<8}{c.photos:>7}  {c.metric:<6}{c.default:>10.6f}{c.candidate:>11.6f}"
                f"{c.difference:>+11.6f}  {c.interval:<24}{c.worse_share:>9.1%}  {c.needs:<23}"
                f"{'pass' if c.passed else 'FAIL'}")
        lines.append(f"verdict: {'ACCEPT' if self.accept else 'REFUSE'}: {self.reason}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Set figures, for the full sample and for resamples
# ---------------------------------------------------------------------------
def set_figures(mae: np.ndarray, f_curves: np.ndarray, weights: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(MAE, max-F)`` of a set of photos, one pair per row of ``weights``.

    ``weights`` (draws, photos) counts how often each photo is in a resample
    (each row sums to the number of photos); ``None`` is the full sample once.
    MAE is the weighted mean of per-image MAE; max-F the maximum over the 256
    thresholds of the weighted mean F curve, as
    :func:`RMBG.evaluation.metrics.summarize` computes it on the full sample.
    """
    mae, f_curves = np.asarray(mae, np.float64), np.asarray(f_curves, np.float64)
    if weights is None:
        weights = np.ones((1, len(mae)))
    total = weights.sum(axis=1)
    return weights @ mae / total, (weights @ f_curves / total[:, None]).max(axis=1)


def resample_weights(categories: np.ndarray, draws: int, seed: int, chunk: int = CHUNK
                     ) -> Iterator[np.ndarray]:
    """Bootstrap resamples as photo counts, ``chunk`` draws at a time: (draws in chunk, photos) float arrays.

    Each draw resamples every category's photos with replacement, keeping its
    size (a multinomial over that category's photos). Seeded: the same
    ``categories``, ``draws``, ``seed`` and ``chunk`` give the same draws.
    """
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(categories == c) for c in sorted(set(categories.tolist()))]
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        weights = np.zeros((size, len(categories)))
        for index in groups:
            weights[:, index] = rng.multinomial(len(index), np.full(len(index), 1.0 / len(index)), size=size)
        yield weights


# ---------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------
def paired(candidate: ScoreTable, default: ScoreTable) -> ScoreTable:
    """``candidate`` with its rows in ``default``'s order, after checking both score the same photos.

    Same photo names, same categories, and (where both files know them) the
    same photo file hashes and the same split; otherwise :class:`ScoreFileError`.
    """
    if candidate.split != default.split:
        raise ScoreFileError(f"{candidate.name} was scored on split {candidate.split or '(all)'!r}, "
                             f"{default.name} on {default.split or '(all)'!r}: not the same photos")
    ours, theirs = set(candidate.images.tolist()), set(default.images.tolist())
    if ours != theirs:
        only_c, only_d = sorted(ours - theirs), sorted(theirs - ours)
        raise ScoreFileError(
            f"{candidate.name} and {default.name} were scored on different photos: "
            f"{len(only_c)} only in the candidate's ({', '.join(only_c[:3])}{'...' if len(only_c) > 3 else ''}), "
            f"{len(only_d)} only in the default's ({', '.join(only_d[:3])}{'...' if len(only_d) > 3 else ''})")
    candidate = candidate.reordered(default.images.tolist())
    differ = np.flatnonzero(candidate.categories != default.categories)
    if len(differ):
        raise ScoreFileError(f"{default.images[differ[0]]}: category {candidate.categories[differ[0]]!r} for "
                             f"{candidate.name} but {default.categories[differ[0]]!r} for {default.name}")
    if candidate.digests is not None and default.digests is not None:
        known = (candidate.digests != "") & (default.digests != "")
        differ = np.flatnonzero(known & (candidate.digests != default.digests))
        if len(differ):
            raise ScoreFileError(f"{default.images[differ[0]]}: a different file (hash) for {candidate.name} "
                                 f"than for {default.name}: the photos changed between the two evaluations")
    return candidate


def shipping_rule(candidate: ScoreTable, default: ScoreTable, draws: int = DRAWS,
                  confidence: float = CONFIDENCE, seed: int = SEED) -> Verdict:
    """Whether ``candidate`` may replace ``default`` (see the module notes for the rule and its noise test)."""
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must lie in (0.5, 1), got {confidence}")
    candidate = paired(candidate, default)
    categories = default.categories
    scopes = [(OVERALL, np.arange(len(categories)))]
    scopes += [(c, np.flatnonzero(categories == c)) for c in sorted(set(categories.tolist()))]

    full = {(scope, who): set_figures(table.mae[index], table.f_curves[index])
            for scope, index in scopes for who, table in (("c", candidate), ("d", default))}
    differences = {(scope, metric): [] for scope, _ in scopes for metric in RULE_METRICS}
    for weights in resample_weights(categories, draws, seed):
        for scope, index in scopes:
            w = weights[:, index]
            (mae_c, f_c), (mae_d, f_d) = (set_figures(t.mae[index], t.f_curves[index], w)
                                          for t in (candidate, default))
            differences[(scope, "mae")].append(mae_c - mae_d)
            differences[(scope, "max_f")].append(f_c - f_d)

    checks = []
    for scope, index in scopes:
        for k, (metric, better) in enumerate(RULE_METRICS.items()):
            d = np.concatenate(differences[(scope, metric)])
            # the end of the one-sided interval nearest "better": low end for MAE, high end for max-F
            bound = float(np.quantile(d, 1 - confidence if better < 0 else confidence))
            value_c, value_d = float(full[(scope, "c")][k][0]), float(full[(scope, "d")][k][0])
            difference = value_c - value_d
            if scope == OVERALL:
                needs, passed = "better", better * difference > 0
            else:
                needs, passed = "not worse beyond noise", not better * bound < 0
            checks.append(Check(scope, metric, len(index), value_d, value_c, difference, bound,
                                float(np.mean(better * d < 0)), needs, bool(passed)))
    return _verdict(candidate.name, default.name, len(categories), draws, confidence, seed, checks)


def _verdict(candidate: str, default: str, photos: int, draws: int, confidence: float, seed: int,
             checks: list[Check]) -> Verdict:
    names = {"mae": "MAE", "max_f": "max-F"}
    reasons = []
    for c in checks:
        if c.passed:
            continue
        if c.scope == OVERALL:
            word = "ties" if c.difference == 0 else "is worse than"
            reasons.append(f"overall {names[c.metric]} {c.candidate:.6f} {word} the default's {c.default:.6f} "
                           f"(a replacement has to be better)")
        else:
            reasons.append(f"{c.scope} {names[c.metric]} is worse beyond noise ({c.difference:+.6f}; one-sided "
                           f"{confidence:.0%} interval {c.interval}, worse in {c.worse_share:.1%} of resamples)")
    if reasons:
        reason = "; ".join(reasons)
    else:
        overall = {c.metric: c for c in checks if c.scope == OVERALL}
        reason = (f"better overall on MAE ({overall['mae'].difference:+.6f}) and max-F "
                  f"({overall['max_f'].difference:+.6f}), and no category worse beyond noise")
    return Verdict(not reasons, reason, candidate, default, photos, draws, confidence, seed, tuple(checks))
