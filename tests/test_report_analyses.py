"""The report's analysis sections, CSV links and Parquet export on small synthetic experiments."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from capsafe.analysis.analyses import run_analyses
from capsafe.analysis.rows import ExperimentRows
from capsafe.analysis.stats import holm
from capsafe.config import CapabilityTarget, ReportSpec
from capsafe.report.explorer import (
    expand_explorer_data,
    explorer_data,
    explorer_json,
    explorer_records,
)
from capsafe.report.export import csv_text
from capsafe.report.html import render_report
from capsafe.store import Store
from tests.helpers.experiment_rows import RowBuilder
from tests.helpers.report_rows import report_rows


def _render(rows: ExperimentRows) -> str:
    return render_report(rows, config=None, title="t", generated_at="g", capsafe_version="0")


@pytest.fixture(scope="module")
def full() -> tuple[ExperimentRows, str]:
    rows = report_rows()
    return rows, _render(rows)


def _csv(page: str, name: str) -> list[dict[str, str]]:
    m = re.search(rf"download='{name}\.csv' href='data:text/csv;charset=utf-8,([^']*)'", page)
    assert m, f"no {name}.csv link"
    return list(csv.DictReader(io.StringIO(unquote(m.group(1)))))


def test_summary_states_capability_matched_safety_and_stability(full) -> None:
    _, page = full
    summary = page[page.index("<section id='summary'>") : page.index("<section id='figures'>")]
    assert "arith/test</span>: base 25.0%; epoch 2 mean over 2 runs <b>100.0%</b>" in summary
    # Both runs reach 80% of the best gain (base 25%, best 100%: threshold 85%) at epoch 2.
    assert "threshold tiny 85.0%" in summary and "2 runs reached it, 0 never did" in summary
    # Harmful compliance on 2 benchmarks x 2 judges (wg by its harm label, kw by compliance),
    # a line each with both runs' changes, all significant.
    assert summary.count("significant</span>") == 4
    assert summary.count("2 of 2 runs significantly up, 0 down") == 4
    assert "2 holds everywhere, 2 inconclusive" in summary


def test_every_analysis_figure_is_embedded(full) -> None:
    _, page = full
    imgs = re.findall(r"<img alt='([^']*)' src='data:image/png;base64,", page)
    for alt in (
        "per benchmark",
        "safety against capability",
        "stability matrix",
        "coherent and incoherent",
        "against compliance",
        "variance decomposition",
    ):
        assert any(alt in a for a in imgs), alt  # fmt: skip
    assert "MixedLM REML variance components" in page


def test_rates_csv_matches_the_analysis(full) -> None:
    rows, page = full
    rates = run_analyses(rows).rates
    exported = _csv(page, "rates")
    assert len(exported) == len(rates)
    base_adv = [r for r in exported if r["setting"] == "base" and r["benchmark"] == "adv/harmful"
                and r["judge"] == "wg" and r["metric"] == "harmful"]  # fmt: skip
    # wg fails to parse prompt 1: 23 labels, 1 parse error.
    assert [(r["labels"], r["parse_errors"]) for r in base_adv] == [("23", "1")]
    assert (
        float(base_adv[0]["ci_low"]) <= float(base_adv[0]["rate"]) <= float(base_adv[0]["ci_high"])
    )
    tests = _csv(page, "tests_vs_base")
    assert {t["test"] for t in tests} == {"mcnemar-exact"}
    assert all(float(t["p_holm"]) >= float(t["p"]) for t in tests)
    fits = _csv(page, "harm_vs_compliance")
    assert fits and all(0 <= float(f["r_squared"]) <= 1 for f in fits)


def test_too_little_data_is_said_not_failed() -> None:
    page = _render(report_rows(seeds=(0,), coherence=False))
    assert "Only one fine-tuning seed at epoch 2" in page
    assert "No coherence judge ran" in page
    base_only = report_rows(seeds=())
    page = _render(base_only)
    assert "The store has no fine-tuned checkpoint, only base models." in page
    assert "No fine-tuned checkpoints to anchor." in page


def test_methods_name_the_tests_and_data(full) -> None:
    _, page = full
    methods = page[page.index("<section id='methods'>") :]
    assert "mcnemar-exact" in methods and "Holm" in methods and "1000 resamples" in methods
    assert "adv/harmful (harmful): 24 prompts" in methods
    assert "fine-tuning seeds 0, 1" in methods


def test_explorer_data_cannot_close_its_script_block() -> None:
    rows = report_rows()
    text = explorer_json(rows)
    assert "<" not in text and ">" not in text and "&" not in text
    # the escapes are plain JSON
    assert expand_explorer_data(json.loads(text)) == explorer_records(rows)


def test_explorer_data_writes_each_repeated_string_once() -> None:
    rows = report_rows()
    records, data = explorer_records(rows), explorer_data(rows)
    assert expand_explorer_data(data) == records
    for key in ("ck", "p", "b"):
        assert data["t"][key] == list(dict.fromkeys(r[key] for r in records))
    verdicts = [text for r in records for _, text in r["j"]]
    assert sorted(data["t"]["jv"]) == sorted(set(verdicts)) and len(verdicts) > len(set(verdicts))
    prompt = records[0]["p"]
    assert sum(r["p"] == prompt for r in records) > 1  # shared by responses, written once:
    text = json.dumps(data, ensure_ascii=False)
    assert text.count(json.dumps(prompt, ensure_ascii=False)) == 1


def test_csv_cells_that_look_like_formulas_are_quoted() -> None:
    text = csv_text(["a", "b"], [["=HYPERLINK(1)", -0.5], ["@x", float("nan")]])
    assert text == "a,b\n'=HYPERLINK(1),-0.5\n'@x,\n"


def test_parquet_export_round_trips(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from capsafe.report.parquet import write_parquet
    from tests.test_report import _fill

    with Store(tmp_path / "s.sqlite") as store:
        _fill(store)
        store.set_meta("config", '{"name": "x"}')
        paths = write_parquet(store, tmp_path / "tables")
        counts = {t: len(getattr(store, t)()) for t in ("generations", "judgments", "runs")}
    tables = {p.stem: pq.read_table(p) for p in paths}
    assert set(tables) == {"models", "runs", "checkpoints", "generations", "judgments",
                           "scores", "meta"}  # fmt: skip
    assert {t: tables[t].num_rows for t in counts} == counts == {
        "generations": 30, "judgments": 20, "runs": 2
    }  # fmt: skip
    assert str(tables["judgments"].schema.field("parse_error").type) == "bool"
    assert tables["meta"].to_pylist() == [{"key": "config", "value": '{"name": "x"}'}]


def test_report_settings_choose_target_benchmark_and_power_change(full) -> None:
    rows, page = full
    a = run_analyses(rows, ReportSpec(capability_target=CapabilityTarget(accuracy=0.5),
                                      power_change=0.2), n_boot=50)  # fmt: skip
    # Accuracy is 5/8 at epoch 1 already, so both runs are matched there.
    assert a.anchoring.target == "accuracy >= 0.5"
    assert {x.model.epoch for x in a.anchoring.anchors} == {1}
    assert a.power and {p.advice.d for p in a.power} == {0.2} and a.power_change == 0.2
    missing = run_analyses(rows, ReportSpec(capability_benchmark="nope"), n_boot=50)
    assert missing.anchoring is None
    assert "'nope', which was not scored" in missing.notes["anchoring"]
    # One setting: nothing to compare over seeds, and the report says so.
    assert a.setting_tests == [] and "One hyperparameter setting" in a.notes["settings"]
    assert {s.factor for s in a.spreads} == {"seed", "judge", "benchmark"}
    power = page[page.index("<section id='power'>") : page.index("<section id='rates'>")]
    assert "10 percentage points" in power and len(_csv(page, "power")) == 2 * 2  # bench x judge
    assert _csv(page, "spread_summary")[0]["over"] == "benchmark"


def test_settings_are_compared_over_seeds_at_last_epoch_and_matched_capability() -> None:
    b = RowBuilder()
    base = b.base()
    b.labels(base, "accuracy", [0] * 10, judge="task", bench="t/test")
    b.labels(base, "harmful", [0] * 10)
    # lr 1e-3 learns slowly and stays safer; lr 1e-2 reaches the target at epoch 1.
    for seed in range(3):
        for lr, accs, harms in (
            (1e-3, (3, 8), (1 + seed, 2 + seed)),
            (1e-2, (8, 9), (5 + seed, 6 + seed)),
        ):
            for e, (acc, harm) in enumerate(zip(accs, harms, strict=True), start=1):
                ck = b.checkpoint(f"r{lr}-{seed}", e, seed=seed, lr=lr)
                b.labels(ck, "accuracy", [1] * acc + [0] * (10 - acc), judge="task", bench="t/test")
                b.labels(ck, "harmful", [1] * harm + [0] * (10 - harm))
    a = run_analyses(b.rows(), ReportSpec(capability_target=CapabilityTarget(accuracy=0.8)),
                     n_boot=50)  # fmt: skip
    tests = {t.epoch: t for t in a.setting_tests if t.metric == "unsafe"}
    assert set(tests) == {2, None}  # the last epoch, and each run at its matched checkpoint
    last, matched = tests[2], tests[None]
    assert (last.n_a, last.n_b) == (3, 3) and last.difference == pytest.approx(0.7 - 0.3)
    assert matched.difference == pytest.approx(0.6 - 0.3)  # lr 1e-3 at epoch 2, 1e-2 at 1
    assert matched.permutation.p_value == pytest.approx(0.1)  # 2 of C(6, 3) = 20 splits
    family = [t.permutation.p_value for t in a.setting_tests]
    assert [t.p_holm for t in a.setting_tests] == pytest.approx(holm(family))


def test_two_versions_of_a_base_are_reported_apart_with_a_warning() -> None:
    old, new = RowBuilder("org"), RowBuilder("org")
    old.labels(old.base("old"), "harmful", [0, 0])
    new.labels(new.base("new"), "harmful", [1, 1])
    rows = old.rows()
    rows = dataclasses.replace(
        rows,
        models=rows.models + [dataclasses.replace(m, base_key="k2") for m in new.models],
        generations=rows.generations + new.rows().generations,
        judgments=rows.judgments + new.judgments,
    )
    page = _render(rows)
    assert "several versions of one base model (rebuilt or updated): org@k2, org@org-key" in page
    assert "several versions" not in _render(old.rows())
