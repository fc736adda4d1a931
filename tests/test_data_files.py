"""capsafe.data.files: every format reads to the same rows, and every bad file fails with
an error naming the file, the line and the column."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from capsafe.data import files
from capsafe.data.files import DataFileError, Row, apply_columns, read_rows, source_rows


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_carry_their_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", 'id,text\n1,"two\nlines"\n2,plain\n')
    rows = read_rows(path)
    assert [r.fields["text"] for r in rows] == ["two\nlines", "plain"]
    assert rows[1].where == f"{path}:4"  # the quoted newline spans lines 2-3


def test_tsv_gz_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.tsv.gz"
    path.write_bytes(gzip.compress("\ufeffid\ttext\n1\thello\n".encode()))
    assert read_rows(path)[0].fields == {"id": "1", "text": "hello"}


def test_jsonl_keeps_line_separators_inside_strings(tmp_path: Path) -> None:
    # json.dumps(ensure_ascii=False) writes U+2028 raw; it is not a line break in JSONL.
    record = {"prompt": "before\u2028after\x85end"}
    path = write(tmp_path / "a.jsonl", json.dumps(record, ensure_ascii=False) + "\n\n{}\r\n")
    rows = read_rows(path)
    assert rows[0].fields == record
    assert rows[1].where == f"{path}:3"  # blank lines are skipped but still counted


def test_json_list_and_keyed_object(tmp_path: Path) -> None:
    write(tmp_path / "a.json", '[{"x": 1}, {"x": 2}]')
    write(tmp_path / "b.json", '{"meta": {}, "rows": [{"x": 3}]}')
    assert [r.fields["x"] for r in read_rows(tmp_path / "a.json")] == [1, 2]
    assert read_rows(tmp_path / "b.json")[0].fields == {"x": 3}
    write(tmp_path / "c.json", '{"a": [], "b": []}')
    with pytest.raises(DataFileError, match="list-valued keys"):
        read_rows(tmp_path / "c.json")
    assert read_rows(tmp_path / "c.json", records_key="b") == []


def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"prompt": ["p1", "p2"], "n": [1, 2]}), tmp_path / "a.parquet")
    rows = read_rows(tmp_path / "a.parquet")
    assert rows[1].fields == {"prompt": "p2", "n": 2} and rows[1].where.endswith("row 2")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "id,text\n1,x,extra\n", r"a\.csv:2: 3 cells, but the header has 2 columns"),
        ("a.csv", "id,text,kind\n1,x\n", r"a\.csv:2: 2 cells, but the header has 3 columns"),
        ("a.csv", 'id,text\n1,"x"y\n', r"a\.csv:2: malformed CSV \(',' expected"),
        (
            "a.csv",
            'id,text\n1,ok\n2,"unclosed\n3,z\n',
            r"a\.csv:4: malformed CSV \(unexpected end.*opened after line 2",
        ),
        ("a.csv", "", "empty file"),
        ("a.jsonl", '{"a": 1}\n{"a": \n', r"a\.jsonl:2: not valid JSON"),
        ("a.jsonl", '{"a": 1}\n[1]\n', r"a\.jsonl:2: expected a JSON object"),
        ("a.json", '[{"a": 1}, 2]', "record 1: expected an object"),
        ("a.json", '{"a": ', r"a\.json:1: not valid JSON"),
        ("a.txt", "x", "unsupported file type"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    with pytest.raises(DataFileError, match=message):
        read_rows(write(tmp_path / name, content))


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("id,text\n1,ok\n2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"a\.csv:3: not UTF-8"):
        read_rows(path)


def test_bad_gzip_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(DataFileError, match="not a readable gzip"):
        read_rows(tmp_path / "a.csv.gz")
    with pytest.raises(DataFileError, match="no such file"):
        read_rows(tmp_path / "absent.csv")


def test_row_get_names_the_column_and_known_columns() -> None:
    row = Row({"prompt": "x", "note": " "}, "f.csv:7")
    assert row.get("note", required=False, default="-") == "-"
    with pytest.raises(DataFileError, match=r"f\.csv:7: column 'note' is missing or empty"):
        row.text("note")
    with pytest.raises(DataFileError, match=r"columns: prompt, note"):
        row.get("id")


def test_apply_columns_renames_and_reports_missing() -> None:
    row = apply_columns(Row({"q": "x", "t": "a"}, "f:2"), {"text": "q", "category": "t"})
    assert row.fields["text"] == "x" and row.fields["category"] == "a"
    with pytest.raises(DataFileError, match=r"f:2: no column 'qid'"):
        apply_columns(Row({"q": "x"}, "f:2"), {"id": "qid"})


def test_source_rows_reads_folders_and_falls_back_to_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "data.csv", "a\n1\n")
    assert source_rows(tmp_path, hub="x/y", files=["none.csv", "data.csv"])[0].fields == {"a": "1"}
    with pytest.raises(DataFileError, match="looked for none.csv"):
        source_rows(tmp_path, hub="x/y", files=["none.csv"])
    with pytest.raises(DataFileError, match="a folder; pass the data file"):
        source_rows(tmp_path, hub="x/y")
    calls = []
    monkeypatch.setattr(files, "hub_rows", lambda *a, **k: calls.append((a, k)) or [])
    source_rows(None, hub="x/y", split="test", config="c", revision="abc", data_files="q.jsonl")
    assert calls == [
        (
            ("x/y",),
            {
                "split": "test",
                "config": "c",
                "revision": "abc",
                "data_files": "q.jsonl",
                "gated": False,
            },
        )
    ]


def test_a_repeated_header_column_is_refused(tmp_path: Path) -> None:
    """DictReader used to keep the last of two 'text' columns without a word."""
    with pytest.raises(DataFileError, match=r"a\.csv:1: the header repeats column\(s\) 'text'"):
        read_rows(write(tmp_path / "a.csv", "id,text,text\n1,first,second\n"))


def test_an_object_where_text_is_expected_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"id": 7, "text": {"role": "user"}}\n')
    (row,) = read_rows(path)
    assert row.text("id") == "7"  # a number reads as its digits
    with pytest.raises(DataFileError, match=r"a\.jsonl:1: column 'text' holds dict"):
        row.text("text")


def test_a_truncated_gzip_is_a_data_file_error(tmp_path: Path) -> None:
    whole = gzip.compress(b"id,text\n" + b"1,hello\n" * 200)
    (tmp_path / "a.csv.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFileError, match="not a readable gzip"):
        read_rows(tmp_path / "a.csv.gz")
