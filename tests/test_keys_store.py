import sqlite3

import pytest

from capsafe import __version__
from capsafe.keys import digest, file_sha256, folder_content_hash
from capsafe.store import GenerationRow, JudgmentRow, Store


def gen_row(key: str, response: str = "r") -> GenerationRow:
    return GenerationRow(
        key=key,
        model_key="m",
        prompt_set="s",
        prompt_id=key,
        kind="harmful",
        category=None,
        prompt="p",
        reference=None,
        format="chat",
        format_spec="{}",
        decoding="{}",
        sample_seed=0,
        response=response,
        n_prompt_tokens=3,
        n_completion_tokens=4,
        finish_reason="eos",
        backend="transformers",
    )


def test_digest_is_order_independent_and_sensitive():
    assert digest(a=1, b={"x": [1, 2]}) == digest(b={"x": [1, 2]}, a=1)
    assert digest(a=1) != digest(a=2)
    assert digest(a=1.0) != digest(a="1.0")


def test_folder_hash_follows_content_not_path(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"\x00\x01")
        (d / "README.md").write_text("ignored")
    assert folder_content_hash(a) == folder_content_hash(b)
    (b / "model.safetensors").write_bytes(b"\x00\x02")
    assert folder_content_hash(a) != folder_content_hash(b)


def test_file_hash_is_memoised_in_store(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    with Store(tmp_path / "db.sqlite") as store:
        first = file_sha256(f, store)
        st = f.stat()
        assert store.cached_file_hash(str(f.resolve()), st.st_size, st.st_mtime_ns) == first


def test_insert_is_idempotent_and_versioned(tmp_path):
    with Store(tmp_path / "db.sqlite") as store:
        assert store.put_generations([gen_row("k1"), gen_row("k2")]) == 2
        assert store.put_generations([gen_row("k1", "other"), gen_row("k3")]) == 1
        assert store.count("generations") == 3
        assert store.existing_keys("generations", ["k1", "k9"]) == {"k1"}
        assert store.generations_by_key(["k1"])["k1"].response == "r"  # first write wins
    rows = (
        sqlite3.connect(tmp_path / "db.sqlite")
        .execute("SELECT DISTINCT capsafe_version FROM generations")
        .fetchall()
    )
    assert rows == [(__version__,)]


def test_judgment_booleans_round_trip(tmp_path):
    row = JudgmentRow(
        key="j",
        generation_key="k",
        judge="x",
        judge_version="1",
        judge_args="{}",
        harmful=True,
        harmful_prob=0.9,
        refusal=None,
        coherent=False,
        relevant=None,
        parse_error=False,
        raw="",
        truncated=True,
    )
    with Store(tmp_path / "db.sqlite") as store:
        store.put_judgments([row])
        assert store.judgments() == [row]


def test_a_version_2_store_gains_the_truncated_column(tmp_path):
    db = tmp_path / "db.sqlite"
    Store(db).close()
    con = sqlite3.connect(db)  # as schema 2 wrote it: no truncated column
    con.execute("ALTER TABLE judgments DROP COLUMN truncated")
    con.execute("DROP TABLE failures")  # schema 3's
    con.execute("DROP TABLE request_failures")  # schema 4's
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.execute(
        "INSERT INTO judgments VALUES ('j', 'k', 'x', '1', '{}', NULL, NULL, NULL, 1, NULL, 0, "
        "'', 'old', 0)"
    )
    con.commit()
    con.close()
    with Store(db) as store:
        (old,) = store.judgments()
        assert old.coherent is True and old.truncated is None
        assert store.meta("schema_version") == "5"
        assert store.failures() == []  # and the failures table of schema 4
        assert store.request_failures() == []  # and the request failures of schema 5


def test_schema_version_mismatch_is_an_error(tmp_path):
    Store(tmp_path / "db.sqlite").close()
    con = sqlite3.connect(tmp_path / "db.sqlite")
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.commit()
    with pytest.raises(RuntimeError, match="schema version 999"):
        Store(tmp_path / "db.sqlite")


def test_a_batch_is_one_transaction_of_tuples_and_moves_the_revision_once(tmp_path):
    # One executemany and one commit per batch (a crash loses at most the batch in flight);
    # the request failures it answers go in the same transaction; no dict per row.
    import capsafe.store as store_module
    from capsafe.store import RequestFailureRow

    assert not hasattr(store_module, "asdict")
    store = Store(tmp_path / "s.db")
    assert store.revision() == 0
    store.put_request_failures([RequestFailureRow("g3", "m", "HTTP 503")])
    assert store.revision() == 1
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    assert store.put_generations([gen_row(f"g{i}") for i in range(64)]) == 64
    store._db.set_trace_callback(None)
    assert [s for s in statements if s.upper().startswith("COMMIT")] == ["COMMIT"]
    assert sum(s.startswith("INSERT OR IGNORE INTO generations") for s in statements) == 64
    assert store.request_failures() == [] and store.revision() == 2
    assert store.put_generations([gen_row("g1")]) == 0 and store.revision() == 2  # no change
    assert store.generations_by_key(["g5"])["g5"] == gen_row("g5")
