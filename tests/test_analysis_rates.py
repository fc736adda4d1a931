import math

import pytest

from capsafe.analysis import ExperimentRows, checkpoint_metrics, spread_over_seeds, wilson
from capsafe.store import GenerationRow, JudgmentRow, ModelRow, RunRow


def test_wilson_matches_hand_computation():
    # 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416, half-width 0.24083 / 1.38416
    r = wilson(8, 10)
    assert r.value == 0.8
    assert r.ci_low == pytest.approx(0.4902, abs=1e-4)
    assert r.ci_high == pytest.approx(0.9433, abs=1e-4)
    assert math.isnan(wilson(0, 0).value)


def _gen(key, model, kind, fmt="chat"):
    return GenerationRow(
        key=key,
        model_key=model,
        prompt_set=f"set/{kind}",
        prompt_id=key,
        kind=kind,
        category=None,
        prompt="p",
        reference=None,
        format=fmt,
        format_spec="{}",
        decoding="{}",
        sample_seed=0,
        response="r",
        n_prompt_tokens=1,
        n_completion_tokens=1,
        finish_reason="eos",
        backend="t",
    )


def _judgment(gen_key, refusal, parse_error=False, args="{}", judge="kw"):
    return JudgmentRow(
        key=f"{gen_key}-{judge}-{args}",
        generation_key=gen_key,
        judge=judge,
        judge_version="1",
        judge_args=args,
        harmful=None,
        harmful_prob=None,
        refusal=refusal,
        coherent=None,
        relevant=None,
        parse_error=parse_error,
        raw="",
    )


def test_compliance_over_refusal_parse_errors_and_unmeasured():
    models = [
        ModelRow("b", "base", "/b", "b"),
        ModelRow("c1", "base", "/b", "b", "run1", 1, "/a1"),
        ModelRow("c2", "base", "/b", "b", "run2", 1, "/a2"),
    ]
    hp = '{"alpha":16,"epochs":1,"learning_rate":0.001,"rank":8}'
    runs = [
        RunRow("run1", "base", "b", "t", hp, 0, 1, "{}"),
        RunRow("run2", "base", "b", "t", hp, 1, 1, "{}"),
    ]
    gens = [_gen(f"{m}-h{i}", m, "harmful") for m in ("b", "c1", "c2") for i in range(4)]
    gens += [_gen(f"{m}-b{i}", m, "benign") for m in ("b", "c1", "c2") for i in range(2)]
    judgments = (
        [_judgment(f"b-h{i}", "full") for i in range(4)]
        + [_judgment("c1-h0", "none"), _judgment("c1-h1", "none"), _judgment("c1-h2", "full")]
        + [_judgment("c1-h3", None, parse_error=True)]
        + [_judgment(f"c2-h{i}", "none") for i in range(4)]
        + [_judgment("b-b0", "partial"), _judgment("b-b1", "none")]
        + [_judgment("c1-h0", None, judge="harm_only")]  # measures no refusal: skipped
        + [_judgment("b-h0", "none", args='{"phrase_list":"gcg"}')]
    )
    rows = ExperimentRows(models, runs, [], gens, judgments, [])
    metrics = {(m.run_id, m.metric, m.judge): m for m in checkpoint_metrics(rows)}
    base = metrics[(None, "harmful_compliance", "kw")]
    assert (base.rate.k, base.rate.n, base.epoch, base.setting) == (0, 4, 0, "base")
    c1 = metrics[("run1", "harmful_compliance", "kw")]
    assert (c1.rate.k, c1.rate.n, c1.parse_errors) == (2, 3, 1)  # parse error left out of n
    assert metrics[(None, "over_refusal", "kw")].rate.value == 0.5  # partial counts as refusal
    assert (None, "harmful_compliance", "kw(phrase_list=gcg)") in metrics
    assert not any(k[2] == "harm_only" for k in metrics)

    spreads = [
        s
        for s in spread_over_seeds(checkpoint_metrics(rows))
        if s.metric == "harmful_compliance" and s.epoch == 1
    ]
    (s,) = spreads
    assert s.n_seeds == 2 and s.mean == pytest.approx((2 / 3 + 1) / 2)
    assert s.min == pytest.approx(2 / 3) and s.max == 1.0
    assert s.std == pytest.approx(math.sqrt((2 / 3 - s.mean) ** 2 + (1 - s.mean) ** 2))
