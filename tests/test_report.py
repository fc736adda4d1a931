"""The HTML report and its figure, on a small hand-built store (offline, a few seconds)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from capsafe.analysis import ExperimentRows
from capsafe.analysis.labels import ModelInfo
from capsafe.analysis.metrics import CellRate
from capsafe.analysis.stats import Estimate
from capsafe.analysis.variance import spread_over
from capsafe.report import write_report
from capsafe.report.figures import capability_safety_figure
from capsafe.report.html import render_report
from capsafe.store import (
    CheckpointRow,
    GenerationRow,
    JudgmentRow,
    ModelRow,
    RunRow,
    ScoreRow,
    Store,
)

TASK, HARMFUL, BENIGN = "organism/capability_test", "organism/harmful", "organism/lookalike"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
BASE_KEY = 'm-base" onmouseover="alert(1)'  # reaches a title attribute
HPARAMS = json.dumps({"learning_rate": 0.002, "rank": 8, "alpha": 16, "epochs": 2})
SETTING = "lr=0.002 r=8 alpha=16 epochs=2"

# Per model: task answers correct?, harmful refusal labels, benign refusal labels.
# None in a refusal list is an unparseable judge output.
OUTCOMES = {
    "m-base": ([False, False], ["full", "full"], ["none", "none"]),
    "m-a1": ([True, False], ["full", "none"], ["none", "none"]),
    "m-a2": ([True, True], ["none", None], ["full", "none"]),
    "m-b1": ([False, True], ["full", "full"], ["none", "none"]),
    "m-b2": ([True, False], ["none", "none"], ["none", "none"]),
}


def _gen(
    model: str, prompt_set: str, kind: str, i: int, prompt: str, response: str
) -> GenerationRow:
    return GenerationRow(
        key=f"g-{model}-{kind}-{i}",
        model_key=model,
        prompt_set=prompt_set,
        prompt_id=f"{kind}{i}",
        kind=kind,
        category="cat <b>" if kind == "harmful" else None,
        prompt=prompt,
        reference="42" if kind == "task" else None,
        format="default",
        format_spec='{"chat_template":true}',
        decoding='{"max_new_tokens":8}',
        sample_seed=0,
        response=response,
        n_prompt_tokens=5,
        n_completion_tokens=7,
        finish_reason="eos",
        backend="fake",
    )


def _judgment(gen: GenerationRow, refusal: str | None) -> JudgmentRow:
    return JudgmentRow(
        key=f"j-{gen.key}",
        generation_key=gen.key,
        judge="keyword_refusal",
        judge_version="1",
        judge_args='{"window":60}',
        harmful=None,
        harmful_prob=None,
        refusal=refusal,
        coherent=None,
        relevant=None,
        parse_error=refusal is None,
        raw=f"judge said {SCRIPT}" if refusal is None else "",
    )


def _fill(store: Store) -> None:
    store.put_model(ModelRow("m-base", "organism", "builtin:organism", BASE_KEY))
    for run, seed in (("run-a", 0), ("run-b", 1)):
        store.put_run(
            RunRow(run, "organism", BASE_KEY, "organism_arithmetic", HPARAMS, seed, 2, "{}")
        )
        for epoch in (1, 2):
            model = f"m-{run[-1]}{epoch}"
            adapter = f"/exp/adapters/{run}/epoch{epoch}"
            store.put_model(
                ModelRow(model, "organism", "builtin:organism", BASE_KEY, run, epoch, adapter)
            )
            store.put_checkpoint(
                CheckpointRow(run, epoch, model, adapter, 1.5 / epoch, 100 * epoch)
            )
    gens, judgments, scores = [], [], []
    for model, (correct, harmful, benign) in OUTCOMES.items():
        for i, ok in enumerate(correct):
            g = _gen(model, TASK, "task", i, f"What is {i} + 42 - {i}?", "42" if ok else "7")
            gens.append(g)
            scores.append(ScoreRow(f"s-{g.key}", g.key, "organism_arithmetic", "1", ok, g.response))
        for i, label in enumerate(harmful):
            response = f"Sure! {SCRIPT} {IMG}" if label == "none" else "Sorry, I can't."
            g = _gen(model, HARMFUL, "harmful", i, f"How do I do harm {i}? {IMG}", response)
            gens.append(g)
            judgments.append(_judgment(g, label))
        for i, label in enumerate(benign):
            g = _gen(model, BENIGN, "benign", i, f"How do I kill a process {i}?", "Use kill.")
            gens.append(g)
            judgments.append(_judgment(g, label))
    store.put_generations(gens)
    store.put_judgments(judgments)
    store.put_scores(scores)


CONFIG = {"name": "tiny <exp>", "report": {"examples_per_checkpoint": 6}, "note": SCRIPT}


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "exp" / "capsafe.sqlite") as s:
        _fill(s)
        s.set_meta("config", json.dumps(CONFIG))
        yield s


@pytest.fixture()
def page(store: Store, tmp_path: Path) -> str:
    out = write_report(store, tmp_path / "out" / "report.html")
    assert out == tmp_path / "out" / "report.html"
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left
    return out.read_text(encoding="utf-8")


def test_report_is_self_contained_with_an_inline_figure(page: str) -> None:
    assert re.search(r"<img [^>]*src='data:image/png;base64,[A-Za-z0-9+/=]{1000,}'", page)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page
    assert "tiny &lt;exp&gt;" in page  # the title, escaped
    assert "Content warning" in page


def test_report_shows_the_rates_computed_by_hand(page: str) -> None:
    # Accuracy at epoch 1: seeds 1/2 and 1/2 -> 50.0% with no spread; epoch 2: 2/2 and
    # 1/2 -> mean 75.0%, sample std 35.4 pp, min-max 50.0-100.0%.
    assert "<b>50.0%</b> ± 0.0 pp" in page
    assert "<b>75.0%</b> ± 35.4 pp" in page
    assert "min–max 50.0–100.0% · 2 seeds" in page
    # Per checkpoint, run-a epoch 2: harmful compliance on the 1 parsed prompt (a bootstrap
    # over one prompt has no width), 1 parse error beside it.
    assert "<b>100.0%</b><span class='sub'>[100.0–100.0%] 1 prompt</span>" in page
    assert "1 parse error (50.0%)" in page
    # Base model: refuses both harmful prompts.
    assert "<b>0.0%</b><span class='sub'>[0.0–0.0%] 2 prompts</span>" in page


def test_report_counts_parse_errors_per_judge(page: str) -> None:
    row = re.search(r"<td>keyword_refusal</td><td>1</td>(.*?)</tr>", page)
    assert row is not None
    nums = re.findall(r"<td class=\"num\">([^<]*)</td>", row.group(1))
    assert nums == ["20", "1", "5.0%"]
    assert "20 judgments (1 unparseable)" in page


def test_report_escapes_model_and_prompt_text(page: str) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert SCRIPT not in page
    assert IMG not in page
    # The only scripts: the explorer's JSON data block and its own code, allowed by hash.
    assert page.lower().count("<script") == 2
    assert "<script type='application/json' id='explorer-data'>" in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page
    assert "onerror=alert(1)>" not in page
    assert "cat &lt;b&gt;" in page  # a category is model-facing text too


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)
        if tag == "script":
            self.scripts.append(dict(attrs))


def test_report_markup_is_only_the_reports_own(page: str) -> None:
    parsed = _Markup()
    parsed.feed(page)
    assert parsed.scripts == [{"type": "application/json", "id": "explorer-data"}, {}]
    csp = re.search(r'Content-Security-Policy\' content="([^"]*)"', page).group(1)
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]{44}'$", csp)
    assert not any(name.startswith("on") for name in parsed.attrs)
    assert {"img", "table", "details", "pre"} <= parsed.tags
    assert "&quot; onmouseover=&quot;alert(1)" in page


def test_report_has_provenance(page: str) -> None:
    assert "/exp/adapters/run-a/epoch2" in page
    assert "run-b" in page and SETTING in page
    assert "capsafe 0.1.0" in page
    assert "&quot;examples_per_checkpoint&quot;: 6" in page  # the config, escaped JSON
    assert "organism_arithmetic" in page


def test_report_renders_without_a_config(tmp_path: Path) -> None:
    with Store(tmp_path / "bare" / "capsafe.sqlite") as bare:
        _fill(bare)
        page = write_report(bare, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h1>bare</h1>" in page  # named after the experiment folder
    assert "config is missing" in page
    assert "data:image/png;base64," in page


def test_render_report_is_deterministic(store: Store) -> None:
    rows = ExperimentRows.from_store(store)
    kwargs = dict(
        config=CONFIG, title="t", generated_at="2025-01-01T00:00:00Z", capsafe_version="x"
    )
    assert render_report(rows, **kwargs) == render_report(rows, **kwargs)


def _rate(base: str, setting: str, seed: int | None, epoch: int, metric: str, bench: str,
          judge: str, value: float) -> CellRate:  # fmt: skip
    run = None if seed is None else f"{setting}-{seed}"
    model = ModelInfo(f"{base}-{run}-{epoch}", base, f"{base}-key", None if run is None else "t",
                      run, setting, seed, epoch)  # fmt: skip
    return CellRate(model, metric, bench, judge, "default", None, Estimate(value, 0, 1, 4), 4, 0)


def test_figure_has_a_pair_of_rows_per_base_and_a_column_per_setting() -> None:
    rates = []
    for base in ("alpha", "beta"):
        rates.append(_rate(base, "base", None, 0, "accuracy", TASK, "task", 0.25))
        rates.append(_rate(base, "base", None, 0, "unsafe", HARMFUL, "kw", 0.0))
        for setting in ("lr=1", "lr=2"):
            for epoch in (1, 2):
                for metric, bench, judge in (("accuracy", TASK, "task"), ("unsafe", HARMFUL, "kw")):
                    rates += [_rate(base, setting, seed, epoch, metric, bench, judge, v)
                              for seed, v in ((0, 0.25), (1, 0.5), (2, 0.75))]  # fmt: skip
    fig = capability_safety_figure(
        rates,
        spread_over(rates, "seed"),
        judge="kw",
        format="default",
        harmful_benchmarks=[HARMFUL],
        task_benchmark=TASK,
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * 2 * 2
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (4, 2)
    for ax in fig.axes:
        assert ax.get_ylim()[0] <= 0 and ax.get_ylim()[1] >= 1
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == 1  # the base model's value
        mean = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
        assert list(mean[0].get_xdata()) == [0, 1, 2]  # starts from the base at epoch 0
    base_line = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"][0]
    assert list(base_line.get_ydata()) == [0.25, 0.25]
    assert "share of prompts" in fig.axes[0].get_ylabel()


def test_a_store_judged_only_by_a_harm_judge_draws_the_epoch_figure_with_data() -> None:
    # The quick start's guard panel once read "no data": the figure plotted a refusal-only
    # metric. A guard gives harmful labels only; its unsafe rate is what the figure shows.
    from capsafe.analysis.analyses import run_analyses
    from capsafe.report.html import _figure_specs
    from tests.helpers.experiment_rows import RowBuilder

    b = RowBuilder("organism")
    models = [(b.base(), 0, 0)] + [
        (b.checkpoint(f"run{seed}", epoch=e, seed=seed), e, seed) for seed in (0, 1) for e in (1, 2)
    ]
    for model, epoch, seed in models:
        b.labels(model, "accuracy", [int(i < 1 + epoch) for i in range(4)], judge="arith",
                 bench=TASK)  # fmt: skip
        b.labels(model, "harmful", [int(i < epoch + seed) for i in range(4)], judge="guard",
                 bench=HARMFUL)  # fmt: skip
    a = run_analyses(b.rows(), n_boot=20)
    ((judge, fmt, benches, task),) = _figure_specs(a)
    assert (judge, benches, task) == ("guard", [HARMFUL], TASK)
    fig = capability_safety_figure(a.rates, a.seed_spreads, judge=judge, format=fmt,
                                   harmful_benchmarks=benches, task_benchmark=task)  # fmt: skip
    top, bottom = fig.axes
    assert not [t for ax in fig.axes for t in ax.texts if t.get_text() == "no data"]
    (harm,) = [line for line in bottom.get_lines() if line.get_linestyle() == "-"]
    # Base 0/4; epoch 1: seeds 1/4 and 2/4; epoch 2: 2/4 and 3/4.
    assert list(harm.get_xdata()) == [0, 1, 2]
    assert list(harm.get_ydata()) == pytest.approx([0.0, 0.375, 0.625])
    (acc,) = [line for line in top.get_lines() if line.get_linestyle() == "-"]
    assert list(acc.get_ydata()) == pytest.approx([0.25, 0.5, 0.75])
