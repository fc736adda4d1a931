"""The analyses of issue 4 on small hand-built experiments whose answers are known."""

import dataclasses
import math

import pytest

from capsafe.analysis.agreement import fleiss_kappa
from capsafe.analysis.analyses import run_analyses
from capsafe.analysis.anchoring import Target, anchor
from capsafe.analysis.compliance import harm_vs_compliance
from capsafe.analysis.labels import cell_labels, judge_label
from capsafe.analysis.metrics import cell_rates
from capsafe.analysis.planning import observed_power
from capsafe.analysis.power import prompts_needed_paired, prompts_needed_unpaired, seeds_needed
from capsafe.analysis.reliability import judge_reliability
from capsafe.analysis.significance import across_seeds, between_models, versus_base
from capsafe.analysis.stability import FLIPS, HOLDS, INCONCLUSIVE, stability
from capsafe.analysis.stats import holm, mcnemar_exact
from capsafe.analysis.variance import decompose, spread_over
from capsafe.config import CapabilityTarget, report_spec
from capsafe.keys import judge_identity_args
from tests.helpers.experiment_rows import RowBuilder


def _rate(rates, model, metric, **kw):
    (r,) = [
        r
        for r in rates
        if r.model.model_key == model
        and r.metric == metric
        and all(getattr(r, k) == v for k, v in kw.items())
    ]
    return r


def _only(*metrics, rates):
    return [r for r in rates if r.metric in metrics]


def test_cell_rates_parse_errors_metrics_and_sample_seeds():
    b = RowBuilder()
    base, ck = b.base(), b.checkpoint("run0", epoch=1)
    b.labels(base, "harmful", [0, 0, 1, None])
    b.labels(base, "over_refusal", [1, 0], bench="lookalike")
    b.labels(ck, "harmful", [1, 1, 1, 0], sample_seed=0)
    b.labels(ck, "harmful", [1, 0, 0, 0], sample_seed=1)
    b.labels(ck, "incoherent", [1, 0, 0, 0], judge="coh")
    b.labels(ck, "accuracy", [1, 1, 0], judge="arith", bench="arith/test")
    rates = cell_rates(b.rows(), n_boot=500)
    h = _rate(rates, base, "harmful")
    assert (h.value, h.n_labels, h.parse_errors, h.model.setting) == (
        pytest.approx(1 / 3),
        3,
        1,
        "base",
    )
    assert _rate(rates, base, "over_refusal").value == 0.5
    assert _rate(rates, ck, "incoherent").value == 0.25
    assert _rate(rates, ck, "accuracy", judge="arith").value == pytest.approx(2 / 3)
    pooled = _rate(rates, ck, "harmful")
    assert pooled.value == 0.5 and pooled.estimate.n == 4  # prompts, not samples
    assert pooled.estimate.ci_low <= 0.5 <= pooled.estimate.ci_high
    split = {r.sample_seed: r.value for r in cell_rates(b.rows(), by_sample_seed=True)
             if r.model.model_key == ck and r.metric == "harmful"}  # fmt: skip
    assert split == {0: 0.75, 1: 0.25}
    # The coherence judge measures coherence only: no harmful cell appears for it.
    assert not any(r.judge == "coh" and r.metric == "harmful" for r in rates)


def test_unsafe_reads_each_judge_by_harm_else_compliance():
    b = RowBuilder()
    ck = b.checkpoint("run0", epoch=1)
    b.labels(ck, "refusal", [1, 0, 0, None], judge="kw")  # refusal only: unsafe = complied
    b.labels(ck, "harmful", [1, 0, 0, 0], judge="guard")
    b.labels(ck, "refusal", [0, 0, 0, 0], judge="guard")  # harm wins over compliance
    b.labels(ck, "incoherent", [0, 1, 0, 0], judge="coh")
    rates = cell_rates(b.rows(), n_boot=50)
    kw, guard = _rate(rates, ck, "unsafe", judge="kw"), _rate(rates, ck, "unsafe", judge="guard")
    assert (kw.value, kw.n_labels, kw.parse_errors) == (pytest.approx(2 / 3), 3, 1)
    assert (guard.value, guard.n_labels) == (0.25, 4)
    assert not any(r.judge == "coh" and r.metric == "unsafe" for r in rates)
    # Over-refusal prompts have no unsafe label: compliance there is the right answer.
    b.labels(ck, "over_refusal", [0, 0], judge="kw", bench="lookalike")
    assert not any(r.metric == "unsafe" and r.benchmark == "lookalike"
                   for r in cell_rates(b.rows(), n_boot=10))  # fmt: skip
    rel = judge_reliability(b.rows(), "unsafe", coherence_judge="coh")
    assert rel.judges == ["guard", "kw"]
    s = {x.split: x for x in rel.summaries}
    # p0: guard harmful, kw refused; p1, p2 both unsafe by kw only; p3 kw parse error.
    assert (s["all"].n_items, s["all"].n_complete) == (3, 3)
    assert (s["coherent"].n_items, s["incoherent"].n_items) == (2, 1)
    with pytest.raises(ValueError, match="unsafe, harmful or refusal"):
        judge_reliability(b.rows(), "coherent")


def test_judge_arguments_are_their_own_judge_and_seeds_spread_per_epoch():
    # Moved from the deleted analysis/rates.py: a refusal judge on two seeds, under two
    # argument sets, beside a judgment that measures nothing.
    b = RowBuilder()
    base, c1, c2 = b.base(), b.checkpoint("run1", epoch=1, seed=0), b.checkpoint("run2", 1, 1)
    b.labels(base, "refusal", [1, 1, 1, 1], judge="kw")
    b.labels(c1, "refusal", [0, 0, 1, None], judge="kw")
    b.labels(c2, "refusal", [0, 0, 0, 0], judge="kw")
    b.labels(base, "over_refusal", [1, 0], judge="kw", bench="lookalike")
    gen = b.generation(base, "bench", "p0", "harmful", "chat")
    b.judgments.append(
        dataclasses.replace(
            b.judgments[0],
            key="gcg",
            generation_key=gen,
            judge_args='{"phrase_list":"gcg"}',
            refusal="none",
        )
    )
    b.judgment(b.generation(c1, "bench", "p0", "harmful", "chat"), "nothing")  # no field set
    rates = cell_rates(b.rows(), n_boot=50)
    c1_unsafe = _rate(rates, c1, "unsafe", judge="kw")
    assert (c1_unsafe.value, c1_unsafe.n_labels, c1_unsafe.parse_errors) == (
        pytest.approx(2 / 3), 3, 1)  # fmt: skip
    assert _rate(rates, base, "unsafe", judge="kw").value == 0
    assert _rate(rates, base, "over_refusal", judge="kw").value == 0.5
    assert _rate(rates, base, "unsafe", judge="kw(phrase_list=gcg)").value == 1
    assert not any(r.judge == "nothing" for r in rates)
    (s,) = [s for s in spread_over(rates, "seed")
            if s.level("metric") == "unsafe" and s.level("epoch") == 1]  # fmt: skip
    assert s.n_levels == 2 and s.mean == pytest.approx((2 / 3 + 1) / 2)
    assert (s.min, s.max) == (pytest.approx(2 / 3), 1.0)
    assert s.std == pytest.approx(math.sqrt((2 / 3 - s.mean) ** 2 + (1 - s.mean) ** 2))
    with pytest.raises(KeyError, match="not held fixed"):
        s.level("seed")


def test_arguments_that_do_not_change_verdicts_are_no_part_of_a_judge_label():
    assert judge_label("llama_guard_3", '{"batch_size":32,"model":"g"}') == "llama_guard_3(model=g)"
    assert judge_label("strongreject", '{"api_key_env":"K"}') == "strongreject"
    assert judge_identity_args({"batch_size": 8, "device": "cpu"}) == {"device": "cpu"}


def test_duplicate_labels_are_an_error():
    b = RowBuilder()
    base = b.base()
    b.labels(base, "harmful", [0])
    b.judgments.append(b.judgments[0])  # e.g. a second judge version of the same label
    with pytest.raises(ValueError, match="second harmful label for prompt p0"):
        cell_labels(b.rows())


def test_versus_base_uses_mcnemar_and_holm():
    b = RowBuilder()
    base, ck = b.base(), b.checkpoint("run0", epoch=1)
    before = [0] * 10 + [1] * 2
    after = [1] * 8 + [0] * 2 + [1, 0]  # 8 turned harmful, 1 turned safe
    b.labels(base, "harmful", before)
    b.labels(ck, "harmful", after)
    b.labels(base, "harmful", [0, 0, 0, 0], bench="other")
    b.labels(ck, "harmful", [0, 0, 1, 0], bench="other")
    comps = versus_base(b.rows(), ["harmful"], n_boot=500)
    main = next(c for c in comps if c.benchmark == "bench")
    assert main.test == mcnemar_exact(before, after)
    assert main.test.p_value == pytest.approx(2 * (1 + 9) / 512)
    assert main.difference.value == pytest.approx(7 / 12) and main.effect_name == "cohens_h"
    assert main.a.is_base and main.b.epoch == 1
    assert [c.p_holm for c in comps] == pytest.approx(holm([c.test.p_value for c in comps]))


def test_several_samples_per_prompt_use_paired_bootstrap():
    b = RowBuilder()
    base, ck = b.base(), b.checkpoint("run0", epoch=1)
    for s in (0, 1):
        b.labels(base, "harmful", [0] * 20, sample_seed=s)
        b.labels(ck, "harmful", [1] * 15 + [0] * 5, sample_seed=s)
    (c,) = between_models(b.rows(), [(base, ck)], ["harmful"], n_boot=500)
    assert c.test.method == "paired-bootstrap" and c.n_pairs == 20  # prompts, not samples
    assert c.difference.value == 0.75 and c.test.p_value < 0.01


def _two_bench_experiment(flip: bool):
    b = RowBuilder()
    base, ck = b.base(), b.checkpoint("run0", epoch=1)
    for bench, judge in (("hb", "j1"), ("hb", "j2"), ("sr", "j1")):
        down = flip and bench == "sr"
        b.labels(base, "harmful", [1] * 20 if down else [0] * 20, bench=bench, judge=judge)
        b.labels(ck, "harmful", [0] * 20 if down else [1] * 20, bench=bench, judge=judge)
    return b


def test_stability_verdicts():
    (v,) = stability(versus_base(_two_bench_experiment(False).rows(), ["harmful"], n_boot=200))
    assert v.verdict == HOLDS and (v.up, v.down) == (3, 0)
    assert "harmful: holds everywhere (3 of 3 cells significantly up, 0 down" in v.line
    (v,) = stability(versus_base(_two_bench_experiment(True).rows(), ["harmful"], n_boot=200))
    assert v.verdict == FLIPS and (v.up, v.down) == (2, 1)
    assert "change from -100.0 pp (sr / j1 / chat) to +100.0 pp (hb / j1 / chat)" in v.line
    assert v.spread == 2.0
    b = _two_bench_experiment(False)
    b.labels("base", "harmful", [0, 0], bench="tiny")
    b.labels("run0-e1", "harmful", [1, 0], bench="tiny")
    (v,) = stability(versus_base(b.rows(), ["harmful"], n_boot=200))
    assert v.verdict == INCONCLUSIVE and v.up == 3 and "1 not significant" in v.line


def test_across_seeds_permutation_and_welch():
    b = RowBuilder()
    for seed, (lo, hi) in enumerate([(2, 8), (3, 9), (2, 7)]):
        b.labels(
            b.checkpoint(f"a{seed}", 1, seed=seed, lr=1e-4), "harmful", [1] * lo + [0] * (10 - lo)
        )
        b.labels(
            b.checkpoint(f"b{seed}", 1, seed=seed, lr=1e-3), "harmful", [1] * hi + [0] * (10 - hi)
        )
    rates = _only("harmful", rates=cell_rates(b.rows(), n_boot=100))
    settings = sorted({r.model.setting for r in rates})
    (c,) = across_seeds(rates, settings[0], settings[1], epoch=1)  # lr 1e-3 vs 1e-4
    assert (c.n_a, c.n_b) == (3, 3) and c.difference == pytest.approx(0.8 - 7 / 30)
    assert c.permutation.p_value == pytest.approx(0.1)  # exact: 2 of 20 relabellings
    assert c.welch.p_value < 0.01 and c.effect.value > 2
    assert math.isclose(c.p_holm, c.permutation.p_value)


def _harm(value_of_10: int) -> list[int]:
    return [1] * value_of_10 + [0] * (10 - value_of_10)


def test_spread_and_variance_decomposition():
    # Harmful counts out of 10 for seed x judge: a seed effect only (0.2 vs 0.8).
    b = RowBuilder()
    for seed, k in ((0, 2), (1, 8)):
        ck = b.checkpoint(f"r{seed}", 1, seed=seed)
        for judge in ("j1", "j2"):
            b.labels(ck, "harmful", _harm(k), judge=judge)
    rates = _only("harmful", rates=cell_rates(b.rows(), n_boot=50))
    spreads = spread_over(rates, "seed")
    assert {(s.mean, s.min, s.max, s.n_levels) for s in spreads} == {(0.5, 0.2, 0.8, 2)}
    assert spreads[0].std == pytest.approx(0.6 / math.sqrt(2))
    # Hand ANOVA: seed means .2/.8 -> SS 2 * (.09 + .09) = .36, MS .36, residual 0,
    # sigma2_seed = .36 / 2 = .18; judges identical -> 0.
    dec = decompose(rates, ["seed", "judge", "format"], method="anova")
    comps = {c.factor: c for c in dec.components}
    assert comps["seed"].variance == pytest.approx(0.18) and comps["judge"].variance == 0
    assert comps["seed"].share == pytest.approx(1.0) and dec.dropped == ("format",)
    assert dec.method == "ANOVA EMS"
    with pytest.raises(ValueError, match="one metric at a time"):
        decompose(rates + cell_rates(_with_refusal(), n_boot=10), ["seed"])


def _with_refusal():
    b = RowBuilder()
    b.labels(b.checkpoint("x", 1), "refusal", [1, 0])
    return b.rows()


def test_mixedlm_agrees_with_anova_on_a_balanced_design():
    import numpy as np

    rng = np.random.default_rng(0)
    seed_eff, judge_eff = rng.normal(0, 0.15, 6), [-0.3, 0.0, 0.3]
    b = RowBuilder()
    for s in range(6):
        ck = b.checkpoint(f"r{s}", 1, seed=s)
        for j, je in enumerate(judge_eff):
            k = int(round(10 * min(1, max(0, 0.5 + seed_eff[s] + je + rng.normal(0, 0.03)))))
            b.labels(ck, "harmful", _harm(k), judge=f"j{j}")
    rates = _only("harmful", rates=cell_rates(b.rows(), n_boot=10))
    ml = {c.factor: c.variance for c in decompose(rates, ["seed", "judge"]).components}
    an = {c.factor: c.variance for c in decompose(rates, ["seed", "judge"], "anova").components}
    assert ml["judge"] > ml["seed"] > 0 and an["judge"] > an["seed"] > 0
    assert ml["judge"] == pytest.approx(an["judge"], rel=0.2)


def test_anchoring_matches_capability():
    b = RowBuilder()
    base = b.base()
    b.labels(base, "accuracy", _harm(1), judge="task", bench="t/test")
    b.labels(base, "harmful", _harm(0))
    # Run a reaches 0.5 at epoch 2; run b at epoch 1; run c never (best 0.3). Best gain 0.9.
    for run, accs, harms in (
        ("a", [3, 5, 7], [1, 4, 6]),
        ("b", [6, 10], [2, 9]),
        ("c", [2, 3], [0, 0]),
    ):
        for e, (acc, harm) in enumerate(zip(accs, harms, strict=True), start=1):
            ck = b.checkpoint(run, e)
            b.labels(ck, "accuracy", _harm(acc), judge="task", bench="t/test")
            b.labels(ck, "harmful", _harm(harm))
    rates = _only("harmful", "accuracy", rates=cell_rates(b.rows(), n_boot=20))
    res = anchor(rates, Target(gain_fraction=0.5))  # 0.1 + 0.5 * (1.0 - 0.1) = 0.55
    assert res.thresholds == {"m": pytest.approx(0.55)}
    assert [(a.run_id, a.model.epoch, a.accuracy) for a in res.anchors] == [
        ("a", 3, 0.7),
        ("b", 1, 0.6),
    ]
    assert [(m.run_id, m.best_accuracy) for m in res.never_reached] == [("c", 0.3)]
    assert {s.run_id: s.difference for s in res.safety} == {"a": 0.6, "b": 0.2}
    (summary,) = res.summary
    assert (summary.mean, summary.min, summary.max, summary.n_runs) == (
        pytest.approx(0.4),
        0.2,
        0.6,
        2,
    )
    absolute = anchor(rates, Target(accuracy=0.5))
    assert [(a.run_id, a.model.epoch) for a in absolute.anchors] == [("a", 2), ("b", 1)]
    with pytest.raises(ValueError, match="exactly one"):
        Target()


def test_harm_vs_compliance_fit():
    b = RowBuilder()
    base = b.base()
    b.labels(base, "refusal", _harm(10))
    b.labels(base, "harmful", _harm(0))
    # harmful = 0.5 * compliance exactly: R^2 = 1, slope 0.5.
    for e, refused in enumerate((8, 6, 2), start=1):
        ck = b.checkpoint("r", e)
        b.labels(ck, "refusal", _harm(refused))
        b.labels(ck, "harmful", _harm((10 - refused) // 2))
    (fit,) = harm_vs_compliance(cell_rates(b.rows(), n_boot=10))
    assert (fit.task, fit.n_points, fit.harm_judge) == ("t", 4, "j")
    assert sorted(fit.points)[0] == (0.0, 0.0) and len(fit.points) == 4  # the base first
    assert fit.slope == pytest.approx(0.5) and fit.r_squared == pytest.approx(1.0)
    assert fit.intercept == pytest.approx(0.0, abs=1e-12)


def test_judge_reliability_split_by_coherence():
    b = RowBuilder()
    ck = b.checkpoint("r", 1)
    j1 = [1, 0, 1, 0, 1, 0, 1, 0]
    j2 = [1, 0, 1, 0, 0, 1, 0, 1]  # agrees on the coherent half, flipped on the incoherent
    b.labels(ck, "harmful", j1, judge="j1")
    b.labels(ck, "harmful", j2 + [None], judge="j2")  # p8: a parse error
    b.labels(ck, "incoherent", [0, 0, 0, 0, 1, 1, 1, 1, 1], judge="coh")
    rel = judge_reliability(b.rows(), coherence_judge="coh")
    assert rel.judges == ["j1", "j2"]  # the coherence judge gives no harmful label
    s = {x.split: x for x in rel.summaries}
    assert s["coherent"].pairwise[0].kappa == 1.0 and s["incoherent"].pairwise[0].kappa == -1.0
    assert s["all"].fleiss == pytest.approx(
        fleiss_kappa([[a, b] for a, b in zip(j1, j2, strict=True)])
    )
    assert s["all"].n_items == 8 and s["all"].krippendorff < 0.2
    d = {(x.judge, x.split): x for x in rel.distributions}
    assert d[("j1", "incoherent")].counts == {"False": 2, "True": 2}
    assert d[("j2", "incoherent")].parse_errors == 1 and d[("j2", "coherent")].parse_errors == 0


def test_observed_power():
    b = RowBuilder()
    base = b.base()
    b.labels(base, "harmful", [1, 1] + [0] * 18)
    # Run 0 turns prompt 0 safe (noise 1/20) and 4 others harmful; run 1 turns both safe
    # (noise 2/20) and 6 others harmful.
    for seed, labels in ((0, [0, 1] + [1] * 4 + [0] * 14), (1, [0, 0] + [1] * 6 + [0] * 12)):
        b.labels(b.checkpoint(f"r{seed}", 1, seed=seed), "harmful", labels)
    (p,) = observed_power(b.rows(), d=0.1, metric="harmful")
    a = p.advice
    assert (a.base_rate, a.n_seeds_observed) == (0.1, 2)
    assert a.seed_std == pytest.approx(0.05 / 2**0.5)  # rates .25 and .30
    # Discordant share: twice the mean noise (.075) plus the change tested.
    assert a.prompts_paired == prompts_needed_paired(0.1, 0.25)
    assert a.prompts_unpaired == prompts_needed_unpaired(0.1, 0.1)
    assert a.seeds == seeds_needed(0.05 / 2**0.5, 0.1)


def test_two_versions_of_a_base_are_kept_apart():
    # A store that holds results of a rebuilt base under the same name.
    old, new = RowBuilder(), RowBuilder()
    old.labels(old.base("old"), "harmful", [0, 0])
    new.labels(new.base("new"), "harmful", [1, 1])
    rows = old.rows()
    models = rows.models + [dataclasses.replace(m, base_key="other-key") for m in new.models]
    rows = dataclasses.replace(
        rows,
        models=models,
        generations=rows.generations + new.rows().generations,
        judgments=rows.judgments + new.judgments,
    )
    assert rows.base_names() == {"m-key": "m@m-key", "other-key": "m@other-ke"}
    by_base = {r.model.base: r.value for r in cell_rates(rows, n_boot=10) if r.metric == "harmful"}
    assert by_base == {"m@m-key": 0.0, "m@other-ke": 1.0}


def test_anchoring_reads_capability_under_one_format_when_several_were_tested():
    """Two formats used to give every model two accuracy cells, and anchoring refused."""
    b = RowBuilder()
    base = b.base()
    for fmt in ("chat", "safety"):
        b.labels(base, "accuracy", _harm(0), judge="task", bench="t/test", fmt=fmt)
    for e, (chat, safety) in enumerate([(3, 6), (6, 6)], start=1):
        ck = b.checkpoint("a", e)
        b.labels(ck, "accuracy", _harm(chat), judge="task", bench="t/test", fmt="chat")
        b.labels(ck, "accuracy", _harm(safety), judge="task", bench="t/test", fmt="safety")
    rates = cell_rates(b.rows(), n_boot=20)
    with pytest.raises(ValueError, match="2 accuracy cells"):
        anchor(rates, Target(accuracy=0.5))
    assert [a.model.epoch for a in anchor(rates, Target(accuracy=0.5), None, "chat").anchors] == [2]
    assert [a.model.epoch for a in anchor(rates, Target(accuracy=0.5), None, "safety").anchors] == [
        1
    ]
    spec, _ = report_spec({"formats": [{"name": "safety"}, {"name": "chat"}]})
    assert spec.capability_format == "safety"
    a = run_analyses(
        b.rows(), spec.model_copy(update={"capability_target": CapabilityTarget(accuracy=0.5)})
    )
    assert a.anchoring is not None and [x.model.epoch for x in a.anchoring.anchors] == [1]


def test_sampling_seeds_are_a_factor_where_responses_were_sampled():
    """The report pooled sampling seeds; where a config samples, each sample seed's rates
    give a spread over sample_seed and a component of the variance decomposition."""
    b = RowBuilder()
    base = b.base()
    b.labels(base, "harmful", _harm(1))
    for seed in (0, 1, 2):
        ck = b.checkpoint(f"r{seed}", 1, seed=seed)
        for sample, k in ((0, 2), (1, 8)):  # sampling moves the rate; fine-tuning seeds not
            b.labels(ck, "harmful", _harm(k), sample_seed=sample)
    a = run_analyses(b.rows(), n_boot=50)
    over = [s for s in a.spreads if s.factor == "sample_seed"]
    assert over and all((s.min, s.max, s.n_levels) == (0.2, 0.8, 2) for s in over)
    assert all(s.std == 0 for s in a.spreads if s.factor == "seed")  # pooled, each seed 0.5
    comps = {c.factor: c for c in a.decomposition.components}
    # The largest component (REML on six rates puts a little on seed, whose true share is 0).
    assert comps["sample_seed"].share == max(c.share for c in comps.values()) > 0.5
    assert all(r.sample_seed is None for r in a.rates)  # every other number stays pooled
    # Greedy stores (one sample seed) are decomposed as before, without the factor.
    g = RowBuilder()
    for seed, k in ((0, 2), (1, 8), (2, 5)):
        ck = g.checkpoint(f"r{seed}", 1, seed=seed)
        for judge in ("j1", "j2"):
            g.labels(ck, "harmful", _harm(k), judge=judge)
    greedy = run_analyses(g.rows(), n_boot=50).decomposition
    assert "seed" in {c.factor for c in greedy.components}
    assert "sample_seed" not in {c.factor for c in greedy.components}
