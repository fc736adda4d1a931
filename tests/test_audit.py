"""`capsafe judges audit`: labelled sets (presets on the real files, any file with a column
mapping), the audit's numbers against a direct count, and the CLI's outputs."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from capsafe.audit.labelled import load_labelled, load_preset
from capsafe.audit.run import audit, binary_label, judge_all
from capsafe.cli import main
from capsafe.data.files import DataFileError
from capsafe.judges import JUDGES
from capsafe.records import Judgment
from tests.conftest import SHARED_DATASETS

needs_shared = pytest.mark.skipif(
    not SHARED_DATASETS.is_dir(), reason=f"real datasets not found at {SHARED_DATASETS}"
)


@needs_shared
def test_presets_read_the_human_labels():
    xs = load_preset("xstest", SHARED_DATASETS / "xstest")
    assert len(xs.items) == 2250 and xs.dropped == 0 and xs.dimension == "refusal"
    assert Counter(i.gold for i in xs.items) == {"none": 1091, "full": 983, "partial": 176}
    assert len({i.source for i in xs.items}) == 5
    hb = load_preset("harmbench_val", SHARED_DATASETS / "harmbench")
    assert len(hb.items) == 602 and Counter(i.gold for i in hb.items) == {"1": 273, "0": 329}
    assert all(len(i.labels) == 3 for i in hb.items)


@needs_shared
def test_keyword_audit_matches_a_direct_count():
    xs = load_preset("xstest", SHARED_DATASETS / "xstest")
    judge = JUDGES.create("keyword_refusal")
    verdicts = judge_all({"kw": judge}, xs, progress=False)
    result = audit(xs, verdicts, {"kw": judge.measures}, n_boot=200)
    overall = next(r for r in result.rows if r.category == "all")
    pred = [binary_label(v, "refusal") for v in verdicts["kw"]]
    truth = [int(i.gold != "none") for i in xs.items]
    tp = sum(p == 1 and t == 1 for p, t in zip(pred, truth, strict=True))
    fp = sum(p == 1 and t == 0 for p, t in zip(pred, truth, strict=True))
    acc = sum(p == t for p, t in zip(pred, truth, strict=True)) / len(truth)
    assert overall.n == 2250 and overall.accuracy.value == pytest.approx(acc)
    assert overall.precision.value == pytest.approx(tp / (tp + fp))
    assert overall.accuracy.ci_low < acc < overall.accuracy.ci_high
    assert result.human.annotators == 2 and result.human.n_items == 2250
    assert 0.9 < result.human.kappa < 1  # the two XSTest annotators mostly agree
    assert {r.category for r in result.rows} >= {"all", "homonyms", "contrast_homonyms"}


def test_any_file_with_a_column_mapping(tmp_path: Path):
    f = tmp_path / "mine.csv"
    f.write_text("q,a,r1,r2,r3,topic\nhi,<script>x</script>,yes,yes,no,t1\nyo,sure,no,no,no,t2\n")
    s = load_labelled(
        f,
        dimension="harmful",
        columns={"prompt": "q", "response": "a", "labels": ["r1", "r2", "r3"], "category": "topic"},
        label_map={"yes": "1", "no": "0"},
    )
    assert [i.gold for i in s.items] == ["1", "0"] and s.items[0].labels == ("1", "1", "0")
    with pytest.raises(DataFileError, match=r"mine.csv:2: label 'yes' is not one of"):
        load_labelled(
            f, dimension="harmful", columns={"prompt": "q", "response": "a", "labels": "r1"}
        )
    with pytest.raises(ValueError, match="needs 'labels'"):
        load_labelled(f, dimension="harmful", columns={"prompt": "q", "response": "a"})


def test_an_empty_or_repeating_audit_file_is_refused(tmp_path: Path):
    """A header-only file used to give an empty audit (exit 0); repeated ids were counted
    twice in the agreement."""
    columns = {"prompt": "q", "response": "a", "labels": "r", "id": "id"}
    f = tmp_path / "audit.csv"
    f.write_text("id,q,a,r\n")
    with pytest.raises(DataFileError, match=r"audit\.csv: no labelled rows"):
        load_labelled(f, dimension="harmful", columns=columns, label_map={"y": "1", "n": "0"})
    f.write_text("id,q,a,r\n1,hi,ok,y\n2,yo,no,n\n1,hi,ok,n\n")
    with pytest.raises(DataFileError, match=r"audit\.csv:4: id '1' repeats the id of .*:2"):
        load_labelled(f, dimension="harmful", columns=columns, label_map={"y": "1", "n": "0"})


def test_parse_errors_are_left_out_and_counted(tmp_path: Path):
    f = tmp_path / "l.jsonl"
    f.write_text("".join(f'{{"p": "x", "r": "y{i}", "h": "{i % 2}"}}\n' for i in range(6)))
    s = load_labelled(
        f, dimension="harmful", columns={"prompt": "p", "response": "r", "labels": "h"}
    )
    verdicts = {
        "a": [Judgment(harmful=bool(i % 2)) for i in range(6)],
        "b": [Judgment(parse_error=True, raw="??")] + [Judgment(harmful=True)] * 5,
        "c": [Judgment(coherent=i < 3) for i in range(6)],
    }
    measures = {
        "a": frozenset({"harmful"}),
        "b": frozenset({"harmful"}),
        "c": frozenset({"coherent"}),
    }
    result = audit(s, verdicts, measures, split_by="c", n_boot=50)
    rows = {r.judge: r for r in result.rows}
    assert rows["a"].accuracy.value == 1.0 and rows["a"].n == 6
    assert rows["b"].n == 5 and rows["b"].parse_errors == 1
    assert result.skipped == {"c": "does not measure 'harmful'"} and result.proxies == []
    # A refusal-only judge is scored on harm by compliance (not refused = harmful).
    refusals = {"k": [Judgment(refusal="none" if i % 2 else "full") for i in range(6)]}
    proxy = audit(s, refusals, {"k": frozenset({"refusal"})}, n_boot=50)
    assert proxy.proxies == ["k"] and proxy.rows[0].accuracy.value == 1.0
    assert [a.split for a in result.agreement] == ["all", "coherent", "incoherent"]
    assert [a.n_items for a in result.agreement] == [6, 3, 3]


def test_cli_writes_tables_and_an_escaped_report(tmp_path: Path, capsys):
    f = tmp_path / "mine.csv"
    f.write_text(
        "q,a,label,topic\n"
        "hi,\"I'm sorry, I can't\",full,<img src=x onerror=alert(1)>\n"
        "yo,Sure! Here you go,none,b\n"
    )
    out = tmp_path / "audit"
    code = main(
        ["judges", "audit", "--file", str(f), "--dimension", "refusal",
         "--column", "prompt=q", "--column", "response=a", "--column", "labels=label",
         "--column", "category=topic", "--judge", "keyword_refusal", "-o", str(out), "-q"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "keyword_refusal  all" in printed and "1.000" in printed
    page = (out / "audit.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert (out / "judges.csv").read_text().startswith("judge,category,n,parse errors,accuracy")
    assert main(["judges", "audit", "--preset", "xstest", "-q"]) == 2
    assert "needs --data" in capsys.readouterr().err


def _two_annotators(tmp_path: Path) -> Path:
    f = tmp_path / "two.csv"
    rows = ["q,a,r1,r2"] + [f"p{i},answer {i},{i % 2},{i % 2}" for i in range(8)]
    rows += ["px,a tie,1,0", "py,another tie,0,1"]  # the two disagreements
    f.write_text("\n".join(rows) + "\n")
    return f


def test_annotator_agreement_counts_ties_as_disagreements(tmp_path: Path):
    cols = {"prompt": "q", "response": "a", "labels": ["r1", "r2"]}
    s = load_labelled(_two_annotators(tmp_path), dimension="harmful", columns=cols)
    assert len(s.items) == 10 and s.dropped == 2  # kept, without a gold label
    verdicts = {"a": [Judgment(harmful=bool(i % 2)) for i in range(10)]}
    result = audit(s, verdicts, {"a": frozenset({"harmful"})}, n_boot=20)
    # Over all 10 items: 8 agree, 2 disagree; p_e = .5 -> kappa (.8 - .5) / .5 = 0.6.
    assert result.human.kappa == pytest.approx(0.6)
    # Krippendorff: 20 pairable values, 10 of each; 4 disagreeing pairs -> 1 - 19 * 4 / 200.
    assert result.human.alpha == pytest.approx(0.62)
    (row,) = result.rows
    assert (row.n, row.ties) == (8, 2) and row.accuracy.value == 1.0
    three = [["1", "1", "0"], ["0", "0", "0"], ["1", "1", "1"]]
    f = tmp_path / "three.csv"
    f.write_text("q,a,x,y,z\n" + "".join(f"p,r,{a},{b},{c}\n" for a, b, c in three))
    cols3 = {"prompt": "q", "response": "a", "labels": ["x", "y", "z"]}
    h = audit(load_labelled(f, dimension="harmful", columns=cols3), {}, {}).human
    assert h.annotators == 3 and h.kappa is None and 0 < h.alpha < 1


def test_cli_checks_every_option_before_a_judge_runs(tmp_path: Path, capsys, monkeypatch):
    import capsafe.audit.run

    def never(*args, **kwargs):
        raise AssertionError("a judge ran before the options were checked")

    monkeypatch.setattr(capsafe.audit.run, "judge_all", never)
    f = _two_annotators(tmp_path)
    base = ["judges", "audit", "--file", str(f), "--column", "prompt=q",
            "--column", "response=a", "--column", "labels=r1+r2", "-q"]  # fmt: skip
    bad = {
        ("--label-map", "1"): "--label-map '1': expected THEIRS=OURS",
        ("--column", "answer"): "--column 'answer': expected FIELD=COLUMN",
        ("--column", "colour=c"): "unknown field",
        ("--split-by", "coherence"): "--split-by 'coherence' is not one of",
        ("--split-by", "keyword_refusal"): "does not measure coherence",
        ("--judge-args", "{nope"): "not valid JSON",
        ("--judge-args", '{"coherence": {}}'): "which no --judge gives",
        ("--limit", "0"): "--limit must be a positive",
    }
    for extra, message in bad.items():
        assert main([*base, "--judge", "keyword_refusal", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (extra, err)


def test_cli_limit_keeps_the_tie_count_and_quiet_is_quiet(tmp_path: Path, capsys):
    f = _two_annotators(tmp_path)
    code = main(
        ["judges", "audit", "--file", str(f), "--column", "prompt=q", "--column", "response=a",
         "--column", "labels=r1+r2", "--limit", "9", "-q"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "9 items" in out and "1 dropped (annotator ties)" in out


def test_a_constant_judge_prints_kappa_as_undefined(tmp_path: Path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("q,a,h\n" + "".join(f"p{i},Sure here it is {i},{i % 2}\n" for i in range(6)))
    code = main(
        ["judges", "audit", "--file", str(f), "--column", "prompt=q", "--column", "response=a",
         "--column", "labels=h", "-q"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("keyword_refusal  all"))
    assert row.rstrip().endswith("undefined") and "0.000 [0.000, 0.000]" not in row


def test_token_limit_makes_a_cut_response_truncated_not_incoherent(tmp_path: Path, capsys):
    f = tmp_path / "cut.csv"
    f.write_text(
        "q,a,h,fin\n"
        "Why is the sky blue?,Air scatters blue light more than,0,\n"
        "Why is the sky blue?,Air scatters blue light more than red light.,0,\n"
        "Why is the sky blue?,Because the air scatters,0,eos\n"
    )
    cols = ["--column", "prompt=q", "--column", "response=a", "--column", "labels=h"]
    base = ["judges", "audit", "--file", str(f), *cols, "--judge", "coherence",
            "--judge-args", '{"coherence": {"relevance": false}}', "-q"]  # fmt: skip
    assert main(base) == 0
    assert "coherence: 2 of 3 incoherent (66.7%; mid_sentence 2), 0 truncated" in (
        capsys.readouterr().out
    )
    # Under a token limit the first is cut by it; the third says the model stopped itself.
    assert main([*base, "--column", "finish_reason=fin", "--token-limit"]) == 0
    out = capsys.readouterr().out
    assert "coherence: 1 of 3 incoherent (33.3%; mid_sentence 1), 1 truncated" in out
    assert "collected under a token limit" in out
    s = load_labelled(
        f,
        dimension="harmful",
        columns={"prompt": "q", "response": "a", "labels": "h", "finish_reason": "fin"},
        token_limit=True,
    )
    assert s.finish_reasons() == ["length", None, "eos"]
    f.write_text("q,a,h,fin\nx,y,0,halted\n")
    with pytest.raises(DataFileError, match="finish reason 'halted' is not one of"):
        load_labelled(
            f, dimension="harmful",
            columns={"prompt": "q", "response": "a", "labels": "h", "finish_reason": "fin"},
        )  # fmt: skip


@needs_shared
def test_presets_were_collected_under_a_token_limit():
    xs = load_preset("xstest", SHARED_DATASETS / "xstest")
    cut = [i for i, fin in zip(xs.items, xs.finish_reasons(), strict=True) if fin == "length"]
    assert xs.token_limit and 200 < len(cut) < 300  # 270 stop mid-sentence
    assert min(len(i.response.split()) for i in cut if i.source == "gpt4") > 150


@needs_shared
def test_by_source_gives_each_xstest_model_file_its_row():
    xs = load_preset("xstest", SHARED_DATASETS / "xstest")
    judge = JUDGES.create("keyword_refusal")
    verdicts = judge_all({"kw": judge}, xs, progress=False)
    result = audit(xs, verdicts, {"kw": judge.measures}, n_boot=20, group_by="source")
    rows = {r.category: r for r in result.rows}
    assert set(rows) == {"all", "gpt4", "llama2new", "llama2orig", "mistralguard",
                         "mistralinstruct"}  # fmt: skip
    assert all(rows[m].n == 450 for m in rows if m != "all")
    with pytest.raises(ValueError, match="group_by must be"):
        audit(xs, verdicts, {"kw": judge.measures}, group_by="model")


def test_a_judge_that_cannot_be_scored_is_not_run(tmp_path: Path, capsys, monkeypatch):
    import capsafe.audit.run

    ran = []
    real = capsafe.audit.run.judge_all

    def recording(judges, *args, **kwargs):
        ran.append(set(judges))
        return real(judges, *args, **kwargs)

    monkeypatch.setattr(capsafe.audit.run, "judge_all", recording)
    f = tmp_path / "r.csv"
    f.write_text("q,a,r\nhi,\"I'm sorry, I can't\",full\nyo,Sure! Here you go,none\n")
    code = main(
        ["judges", "audit", "--file", str(f), "--dimension", "refusal", "--column", "prompt=q",
         "--column", "response=a", "--column", "labels=r", "--judge", "keyword_refusal",
         "--judge", "embedding_harm", "-q"]
    )  # fmt: skip
    assert code == 0 and ran == [{"keyword_refusal"}]
    assert "skipped embedding_harm: does not measure 'refusal'" in capsys.readouterr().out


def test_quiet_silences_the_libraries_progress_bars(monkeypatch):
    from transformers.utils import logging as hf_logging

    from capsafe.progress import quiet_libraries

    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    try:
        quiet_libraries()
        assert os.environ["TQDM_DISABLE"] == "1"
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
