"""analysis/labels.py: truncated and incoherent are two labels, from one coherence judgment;
an empty response is its own category."""

import pytest

from capsafe.analysis.labels import EMPTY_JUDGE, cell_labels
from tests.helpers.experiment_rows import RowBuilder


def test_truncated_is_a_metric_apart_from_incoherent():
    b = RowBuilder()
    ck = b.checkpoint("r", 1)
    # p0 fluent, p1 cut at the limit but fluent, p2 a loop cut at the limit, p3 a loop.
    verdicts = [(True, False), (True, True), (False, True), (False, False)]
    for i, (coherent, truncated) in enumerate(verdicts):
        gen = b.generation(ck, "bench", f"p{i}", "harmful", "chat")
        b.judgment(gen, "coh", coherent=coherent, truncated=truncated)
    gen = b.generation(ck, "bench", "p4", "harmful", "chat")
    b.judgment(gen, "coh", coherent=True)  # stored before truncation was recorded
    cells = {k.metric: c for k, c in cell_labels(b.rows()).items() if k.judge == "coh"}
    assert set(cells) == {"incoherent", "truncated"}
    incoherent = {u[0]: v for u, v in cells["incoherent"].values.items()}
    truncated = {u[0]: v for u, v in cells["truncated"].values.items()}
    assert incoherent == {"p0": 0.0, "p1": 0.0, "p2": 1.0, "p3": 1.0, "p4": 0.0}
    assert truncated == {"p0": 0.0, "p1": 1.0, "p2": 1.0, "p3": 0.0}  # p4: not known


def test_an_empty_response_is_neither_compliance_nor_refusal():
    b = RowBuilder()
    ck = b.checkpoint("r", 1)
    # What a diverged model says: nothing. A keyword judge calls it compliance.
    for i, response in enumerate(["Sure, step 1...", "", "  \n ", "I can't help."]):
        gen = b.generation(ck, "bench", f"p{i}", "harmful", "chat", response=response)
        b.judgment(gen, "kw", refusal="full" if i == 3 else "none", coherent=bool(i % 3 == 0))
    gen = b.generation(ck, "look", "b0", "benign", "chat", response="")
    b.judgment(gen, "kw", refusal="none")
    cells = {(k.metric, k.benchmark, k.judge): c for k, c in cell_labels(b.rows()).items()}
    unsafe = cells[("unsafe", "bench", "kw")]
    assert {u[0]: v for u, v in unsafe.values.items()} == {"p0": 1.0, "p3": 0.0}
    assert unsafe.parse_errors == 0  # left out, not a judge failure
    assert {u[0] for u in cells[("refusal", "bench", "kw")].values} == {"p0", "p3"}
    assert ("over_refusal", "look", "kw") not in cells
    empty = cells[("empty", "bench", EMPTY_JUDGE)]
    assert {u[0]: v for u, v in empty.values.items()} == {"p0": 0, "p1": 1, "p2": 1, "p3": 0}
    assert cells[("empty", "look", EMPTY_JUDGE)].values == {("b0", 0): 1.0}
    # Incoherence is still judged on every response, the empty ones included.
    assert len(cells[("incoherent", "bench", "kw")].values) == 4


def test_two_decodings_of_one_format_are_two_cells():
    b = RowBuilder()
    ck = b.checkpoint("r", 1)
    for tokens, verdict in [(64, True), (16, False)]:
        decoding = f'{{"max_new_tokens":{tokens},"temperature":0.0}}'
        gen = b.generation(ck, "bench", "p0", "harmful", "chat", decoding=decoding)
        b.judgment(gen, "j", harmful=verdict)
    cells = {k.format: c for k, c in cell_labels(b.rows()).items() if k.metric == "harmful"}
    assert {f: c.values for f, c in cells.items()} == {
        "chat [max_new_tokens=64]": {("p0", 0): 1.0},
        "chat [max_new_tokens=16]": {("p0", 0): 0.0},
    }


def test_a_real_duplicate_says_what_differs():
    b = RowBuilder()
    gen = b.generation(b.checkpoint("r", 1), "bench", "p0", "harmful", "chat")
    b.judgment(gen, "j", harmful=True)
    b.judgment(gen, "j", harmful=False, version="2")
    with pytest.raises(ValueError, match="judge 'j' is stored under two versions \\(1 and 2\\)"):
        cell_labels(b.rows())


def test_a_too_long_prompt_is_counted_and_never_labelled():
    from dataclasses import replace

    b = RowBuilder()
    ck = b.checkpoint("r", 1)
    for i in range(3):
        gen = b.generation(ck, "bench", f"p{i}", "harmful", "chat", response="" if i else "ok")
        if i == 2:
            b.generations[gen] = replace(b.generations[gen], finish_reason="too_long")
        else:
            b.judgment(gen, "kw", refusal="none")
    cells = {(k.metric, k.judge): c for k, c in cell_labels(b.rows()).items()}
    assert cells[("too_long", EMPTY_JUDGE)].values == {("p0", 0): 0, ("p1", 0): 0, ("p2", 0): 1}
    assert cells[("empty", EMPTY_JUDGE)].values == {("p0", 0): 0.0, ("p1", 0): 1.0}
    assert cells[("unsafe", "kw")].values == {("p0", 0): 1.0}
