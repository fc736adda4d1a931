"""The report's sample of responses: bounded, an even share per checkpoint x benchmark, judge
disagreements and incoherent responses first, the same for the same store, and said so on
the page beside the way to see every response (`capsafe view DIR`)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from capsafe.cli import main
from capsafe.config import ConfigError, report_spec
from capsafe.report.explorer import explorer_section
from capsafe.report.flags import flags_by_generation
from capsafe.report.sample import explorer_sample, split_evenly
from capsafe.store import Store
from tests.helpers.experiment_rows import RowBuilder
from tests.helpers.report_rows import report_rows
from tests.helpers.view_store import write_rows

ROWS = report_rows()  # 5 models x (24 + 24 harmful prompts + 8 task items)


def _strata(gens) -> Counter:
    return Counter((g.model_key, g.prompt_set) for g in gens)


def test_split_evenly() -> None:
    assert split_evenly({"a": 10, "b": 10, "c": 10}, 12) == {"a": 4, "b": 4, "c": 4}
    # A small stratum gives what it cannot take to the others.
    assert split_evenly({"a": 2, "b": 10, "c": 10}, 12) == {"a": 2, "b": 5, "c": 5}
    assert split_evenly({"a": 2, "b": 3}, 100) == {"a": 2, "b": 3}
    assert split_evenly({"a": 5, "b": 5, "c": 5}, 2) == {"a": 0, "b": 1, "c": 1}
    assert split_evenly({"a": 5}, 0) == {"a": 0}
    shares = split_evenly({i: 7 + i % 13 for i in range(200)}, 1000)
    assert sum(shares.values()) == 1000 and max(shares.values()) - min(shares.values()) <= 1


def test_sample_is_bounded_and_stratified() -> None:
    stored = _strata(ROWS.generations)
    assert len(stored) == 15
    sample = explorer_sample(ROWS, 60)
    assert len(sample.generations) == 60 and sample.stored == len(ROWS.generations) == 280
    assert _strata(sample.generations) == {k: 4 for k in stored}
    sample = explorer_sample(ROWS, 200)  # the 8-item task strata give their share away
    shares = _strata(sample.generations)
    assert len(sample.generations) == 200
    assert {shares[k] for k in stored if k[1] == "arith/test"} == {8}
    assert {shares[k] for k in stored if k[1] != "arith/test"} == {16}
    assert len(explorer_sample(ROWS, 10_000).generations) == 280
    assert explorer_sample(ROWS, 0).generations == []


def test_sample_prefers_disagreements_and_incoherent_responses() -> None:
    flags = flags_by_generation(ROWS)
    rank = {k: int(f.disagree) + int(f.incoherent is True) for k, f in flags.items()}
    # Per harmful stratum: 7 flagged responses (one disagreement, six incoherent) of 24.
    assert Counter(rank.values())[1] == 5 * 2 * 7
    for size, flagged_shown in ((45, 3 * 10), (150, 7 * 10)):  # 3, then 10 per stratum
        chosen = {g.key for g in explorer_sample(ROWS, size).generations}
        assert sum(rank[k] for k in chosen) == flagged_shown
        for stratum in _strata(ROWS.generations):
            gens = [g for g in ROWS.generations if (g.model_key, g.prompt_set) == stratum]
            picked = sorted((rank[g.key] for g in gens if g.key in chosen), reverse=True)
            best = sorted((rank[g.key] for g in gens), reverse=True)[: len(picked)]
            assert picked == best  # no unflagged response is shown while a flagged one is not


def test_sample_is_the_same_for_the_same_store() -> None:
    shuffled = dataclasses.replace(
        ROWS, generations=ROWS.generations[::-1], judgments=ROWS.judgments[::-1]
    )
    first, again = explorer_sample(ROWS, 50), explorer_sample(shuffled, 50)
    assert [g.key for g in first.generations] == [g.key for g in again.generations]
    # Unflagged responses are chosen by prompt, so each checkpoint shows the same prompts.
    unflagged = _unflagged_prompts(first)
    assert len(set(unflagged.values())) == 1, unflagged


def _unflagged_prompts(sample) -> dict[str, frozenset[str]]:
    flags = flags_by_generation(ROWS)
    out: dict[str, set[str]] = {}
    for g in sample.generations:
        if g.prompt_set == "arith/test":
            out.setdefault(g.model_key, set()).add(g.prompt_id)
    assert all(not flags[g.key].disagree for g in sample.generations if g.kind == "task")
    return {k: frozenset(v) for k, v in out.items()}


def _data(section: str) -> dict:
    block = re.search(r"<script type='application/json' id='explorer-data'>(.*?)</script>", section)
    assert block is not None
    return json.loads(block.group(1))


def test_section_says_what_it_shows_and_where_the_rest_is() -> None:
    section = explorer_section(ROWS, 30)
    assert len(_data(section)["r"]) == 30
    assert "This report holds <b>30 of the 280 stored responses</b>" in section
    assert "report.explorer_sample" in section and "capsafe view DIR" in section
    section = explorer_section(ROWS, 2000)
    assert len(_data(section)["r"]) == 280
    assert "All 280 stored responses are here" in section and "capsafe view DIR" in section


def test_report_size_does_not_grow_with_the_store() -> None:
    b = RowBuilder("big")
    models = [b.base()] + [b.checkpoint("run0", epoch=e) for e in (1, 2, 3)]
    for m in models:
        for i in range(2_000):
            gen = b.generation(m, "bench", f"p{i}", "harmful", "chat", response="r" * 200)
            b.judgment(gen, "kw", refusal="full" if i % 3 else "none")
            b.judgment(gen, "guard", harmful=i % 5 == 0, refusal="none")
    rows = b.rows()
    section = explorer_section(rows, 400)
    assert len(_data(section)["r"]) == 400
    assert len(section) < 400 * 400  # 8,000 stored responses, a few hundred bytes each shown
    assert "<b>400 of the 8,000 stored responses</b>" in section


def test_sample_size_is_a_report_setting() -> None:
    spec, note = report_spec({"report": {"explorer_sample": 100}})
    assert (spec.explorer_sample, note) == (100, None)
    spec, _ = report_spec({"report": {"explorer_sample": 100}}, ["report.explorer_sample=7"])
    assert spec.explorer_sample == 7
    assert report_spec(None)[0].explorer_sample == 2000
    with pytest.raises(ConfigError, match="explorer_sample"):
        report_spec(None, ["report.explorer_sample=-1"])


def test_capsafe_report_takes_the_setting(tmp_path: Path, capsys) -> None:
    with Store(tmp_path / "capsafe.db") as store:
        write_rows(store, ROWS)
    assert main(["report", str(tmp_path), "report.explorer_sample=15"]) == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert len(_data(page)["r"]) == 15 and "<b>15 of the 280 stored responses</b>" in page
    assert main(["report", str(tmp_path), "report.explorer_sample=-3"]) == 2
    err = capsys.readouterr().err
    assert "explorer_sample" in err and err.count("\n") == 1
