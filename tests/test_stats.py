"""Statistical primitives against hand-computed cases and scipy/statsmodels/sklearn."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from capsafe.analysis.agreement import (
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    majority,
    pairwise_kappa,
)
from capsafe.analysis.audit import audit_judges
from capsafe.analysis.power import (
    advise,
    prompts_needed_paired,
    prompts_needed_unpaired,
    seeds_needed,
)
from capsafe.analysis.stats import (
    bootstrap_mean,
    cohens_d,
    cohens_h,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    paired_effect,
    permutation_test,
    welch_t,
)


def test_bootstrap_hand_cases_and_scipy():
    const = bootstrap_mean([0.3] * 5)
    assert const == (pytest.approx(0.3), pytest.approx(0.3), pytest.approx(0.3), 5)
    # Two prompts 0 and 1: resampled means 0, .5, 1 with probability 1/4, 1/2, 1/4.
    two = bootstrap_mean([0, 1], n_boot=4000)
    assert (two.value, two.ci_low, two.ci_high) == (0.5, 0.0, 1.0)
    # Weights cluster samples on their prompt: 3 of 4 samples of prompt A, none of prompt B.
    assert bootstrap_mean([0.75, 0.0], weights=[4, 2]).value == pytest.approx(0.5)
    data = np.random.default_rng(1).binomial(1, 0.3, size=200)
    ours = bootstrap_mean(data, n_boot=4000, seed=3)
    ref = sps.bootstrap((data,), np.mean, n_resamples=4000, method="percentile", rng=7)
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.015)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.015)
    assert bootstrap_mean(data, seed=3) == bootstrap_mean(data, seed=3)  # seeded


def test_paired_bootstrap_and_effects():
    a = [1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    est, p = paired_bootstrap(a, b, n_boot=4000)
    assert est.value == pytest.approx(0.4) and 0 < est.ci_low <= est.ci_high <= 0.8
    assert p < 0.05
    assert paired_bootstrap(a, a)[1] == 1.0
    eff = paired_effect(a, b)
    assert eff.effect_name == "cohens_h"
    assert eff.difference.value == pytest.approx(0.4)
    assert eff.effect.value == pytest.approx(
        2 * math.asin(math.sqrt(0.9)) - 2 * math.asin(0.5**0.5)
    )
    assert eff.effect.ci_low < eff.effect.value < eff.effect.ci_high
    scores = paired_effect([0.1, 0.2, 0.3, 0.4], [0.3, 0.3, 0.6, 0.5])
    d = np.array([0.2, 0.1, 0.3, 0.1])
    assert scores.effect_name == "cohens_dz"
    assert scores.effect.value == pytest.approx(d.mean() / d.std(ddof=1))
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1], [1, 0])


def test_mcnemar_exact_hand_and_statsmodels():
    a = [1] * 1 + [0] * 5 + [1] * 3 + [0] * 4  # 1 only-a, 5 only-b, 3 both, 4 neither
    b = [0] * 1 + [1] * 5 + [1] * 3 + [0] * 4
    res = mcnemar_exact(a, b)
    assert res.p_value == pytest.approx(2 * (1 + 6) / 64)  # 2 * P(X <= 1), X ~ Bin(6, .5)
    ref = mcnemar([[4, 5], [1, 3]], exact=True)
    assert (res.statistic, res.p_value) == (ref.statistic, pytest.approx(ref.pvalue))
    assert mcnemar_exact([1, 0], [1, 0]).p_value == 1.0


def test_permutation_and_welch():
    x, y = [0.1, 0.2, 0.15], [0.4, 0.5, 0.45]
    perm = permutation_test(x, y)
    # Exact: 20 relabellings of 6 values; only the observed split and its mirror are as extreme.
    assert perm.p_value == pytest.approx(2 / 20)
    assert perm.statistic == pytest.approx(0.3)
    w = welch_t(x, y)
    ref = sps.ttest_ind(y, x, equal_var=False)
    assert (w.statistic, w.p_value) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert math.isnan(welch_t([1.0], [2.0, 3.0]).p_value)
    assert math.isnan(welch_t([0.5, 0.5], [0.7, 0.7]).p_value)  # no spread: undefined
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's precision warning is not passed on
        one_flat = welch_t([0.5, 0.5, 0.5], [0.6, 0.7, 0.8])  # the other group's spread suffices
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sps.ttest_ind([0.6, 0.7, 0.8], [0.5, 0.5, 0.5], equal_var=False)
    assert one_flat.p_value == pytest.approx(ref.pvalue)


def test_holm_hand_and_statsmodels():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    ps = [0.001, 0.2, 0.04, 0.012, 0.5, 0.03]
    assert holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))
    out = holm([0.01, float("nan")])
    assert out[0] == 0.01 and math.isnan(out[1])


def test_cohens_h_and_d():
    assert cohens_h(0.5, 0.5) == 0
    assert cohens_h(0.2, 0.5) == pytest.approx(proportion_effectsize(0.5, 0.2))
    d = cohens_d([1.0, 2.0, 3.0], [3.0, 4.0, 5.0])  # pooled sd 1, mean difference 2
    assert d.value == pytest.approx(2.0)
    se = math.sqrt(6 / 9 + 4 / 12)
    assert d.ci_low == pytest.approx(2 - 1.959964 * se, abs=1e-5)


def test_cohen_kappa_hand_and_sklearn():
    # Wikipedia's example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> po .7, pe .5, kappa .4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 3, 60).tolist(), rng.integers(0, 3, 60).tolist()
    assert cohen_kappa(x, y) == pytest.approx(cohen_kappa_score(x, y))
    assert cohen_kappa([1, None, 0], [1, 0, 0]) == 1.0  # the unlabelled item drops
    # A rater that gives one label: the formula's 0 would read as certain, so undefined.
    assert math.isnan(cohen_kappa([1, 1, 1, 1], [1, 0, 1, 0]))
    assert math.isnan(cohen_kappa([0, 0], [0, 0]))


def test_a_constant_judge_has_no_kappa_and_no_zero_width_interval():
    human = [[1], [0], [1], [0], [1], [1]]
    (row,) = audit_judges(human, {"always": [1] * 6}, n_boot=200)
    assert row.accuracy.value == pytest.approx(4 / 6) and row.recall.value == 1.0
    assert math.isnan(row.kappa.value) and math.isnan(row.kappa.ci_low)


def test_fleiss_kappa_hand_and_statsmodels():
    # Wikipedia's worked example: 10 items, 14 raters, 5 categories, kappa 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    ratings = [[c for c, k in enumerate(row) for _ in range(k)] for row in table]
    assert fleiss_kappa(ratings) == pytest.approx(sm_fleiss(np.array(table)))
    assert fleiss_kappa(ratings) == pytest.approx(0.210, abs=5e-4)
    with pytest.raises(ValueError, match="item 1"):
        fleiss_kappa([[1, 0], [1, None]])


def test_krippendorff_alpha_nominal():
    # Krippendorff (2011) worked example, 4 coders x 12 units with gaps: nominal alpha 0.743.
    n = None
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    units = [list(u) for u in zip(*coders, strict=True)]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)
    # Hand case: 2 units x 2 coders, (a,a) and (a,b): n=4, o_ab=o_ba=1, n_a=3, n_b=1
    # -> 1 - 3 * 2 / (2 * 3 * 1) = 0.
    assert krippendorff_alpha([["a", "a"], ["a", "b"]]) == pytest.approx(0.0)
    assert krippendorff_alpha([["a", "a"], ["b", "b"]]) == 1.0


def test_pairwise_majority_and_audit():
    pairs = pairwise_kappa({"j1": [1, 0, 1, None], "j2": [1, 0, 0, 1], "j3": [1, 0, 1, 1]})
    assert [(p.judge_a, p.judge_b, p.n) for p in pairs] == [
        ("j1", "j2", 3),
        ("j1", "j3", 3),
        ("j2", "j3", 4),
    ]
    assert pairs[1].kappa == 1.0 and pairs[0].agreement == pytest.approx(2 / 3)
    assert majority([1, 0, 1]) == 1 and majority([1, 0]) is None
    human = [[1, 1, 0], [1, 1, 1], [0, 0, 1], [0, 0, 0], [1, 0], [0, 0, 0]]
    judge = [1, 0, 1, 0, 1, None]  # item 4 ties, item 5 is a parse error
    cats = ["x", "x", "y", "y", "y", "y"]
    rows = {(r.judge, r.category): r for r in audit_judges(human, {"j": judge}, cats)}
    overall = rows[("j", "all")]
    # Kept: items 0-3; truth 1,1,0,0; judge 1,0,1,0 -> tp 1, fn 1, fp 1, tn 1.
    assert (overall.n, overall.ties, overall.parse_errors) == (4, 1, 1)
    assert overall.accuracy.value == 0.5 and overall.precision.value == 0.5
    assert overall.recall.value == 0.5 and overall.f1.value == 0.5
    assert overall.kappa.value == pytest.approx(cohen_kappa([1, 1, 0, 0], [1, 0, 1, 0]))
    x = rows[("j", "x")]  # truth 1, 1; judge 1, 0: humans give one label, kappa undefined
    assert (x.recall.value, x.precision.value) == (0.5, 1.0) and math.isnan(x.kappa.value)
    assert rows[("j", "y")].n == 2 and rows[("j", "y")].accuracy.value == 0.5


def test_power_against_statsmodels_and_hand():
    # Per group n = 2 ((z_a + z_b) / h)^2 (Cohen 1988: h = .2 needs 392 per group).
    h = proportion_effectsize(0.3, 0.2)
    ref = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=0.8)
    assert prompts_needed_unpaired(0.2, 0.1) == math.ceil(ref)
    assert prompts_needed_unpaired(0.2, 0.1) == math.ceil(2 * ((1.959964 + 0.841621) / h) ** 2)
    # Connor: d .1, discordant .2 -> (1.96 sqrt(.2) + .8416 sqrt(.19))^2 / .01
    n = (1.959964 * math.sqrt(0.2) + 0.841621 * math.sqrt(0.19)) ** 2 / 0.01
    assert prompts_needed_paired(0.1, 0.2) == math.ceil(n)
    assert prompts_needed_paired(0.1, 0.2) < prompts_needed_unpaired(0.2, 0.1)
    ref_seeds = TTestIndPower().solve_power(effect_size=0.1 / 0.05, alpha=0.05, power=0.8)
    assert seeds_needed(0.05, 0.1) == math.ceil(ref_seeds)
    # An effect of 14 standard deviations: two seeds already give > 80% power (the solver
    # itself returns NaN there).
    assert TTestIndPower().power(effect_size=0.1 / 0.007, nobs1=2, alpha=0.05) > 0.8
    assert seeds_needed(0.007, 0.1) == 2
    with pytest.raises(ValueError, match="discordant"):
        prompts_needed_paired(0.3, 0.2)
    adv = advise("harmful", "b", "j", "f", 0.95, [0.1, 0.2, 0.3], d=0.1, discordant=0.05)
    assert adv.prompts_unpaired == prompts_needed_unpaired(0.95, -0.1)  # no room above 0.95
    assert adv.seed_std == pytest.approx(0.1) and adv.seeds == seeds_needed(0.1, 0.1)
