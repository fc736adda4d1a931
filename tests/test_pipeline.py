"""End-to-end pipeline on the organism: rerun, resume after kill -9, adding a judge, report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsafe.cli import PARQUET_DIR, main
from capsafe.config import load_config
from capsafe.pipeline import STORE_FILE, run_experiment
from capsafe.registry import UnknownNameError
from capsafe.store import RequestFailureRow, Store
from tests.conftest import normalised_dump, write_small_config

pytestmark = pytest.mark.slow


N_MODELS = 1 + 2  # base + 2 epochs
PER_MODEL = 12 + 12 + 8  # task test + harmful + lookalike prompts


@pytest.fixture(scope="module")
def finished(tmp_path_factory, organism_dir):
    """One complete small experiment; tests copy its folder rather than recompute it."""
    folder = tmp_path_factory.mktemp("finished")
    path = write_small_config(folder, organism_dir, "small")
    outcome = run_experiment(load_config(path), progress=False)
    return folder, outcome


def copy_of(finished, tmp_path: Path) -> Path:
    """A copy of the finished experiment's folder in tmp_path, with its config rewritten."""
    folder, _ = finished
    shutil.copytree(folder / "small", tmp_path / "small")
    return tmp_path / "small"


def test_first_run_counts(finished):
    _, first = finished
    assert first.epochs_trained == 2
    assert first.generated == N_MODELS * PER_MODEL
    assert first.judged == N_MODELS * (12 + 8)
    assert first.scored == N_MODELS * 12
    assert first.report is not None and first.report.is_file()


def test_rerun_computes_nothing(finished, small_config, tmp_path, monkeypatch):
    copy_of(finished, tmp_path)
    again = run_experiment(load_config(small_config()), progress=False)
    assert (again.epochs_trained, again.generated, again.judged, again.scored) == (0, 0, 0, 0)
    # ... and renders nothing: the report is current, by its stamp, until what it is
    # rendered from changes (a row, a report setting) or the report is gone.
    import capsafe.report.html as html

    renders, real = [], html.render_report
    monkeypatch.setattr(html, "render_report", lambda *a, **k: renders.append(1) or real(*a, **k))
    page = again.report.read_bytes()
    run_experiment(load_config(small_config()), progress=False)
    assert renders == [] and again.report.read_bytes() == page
    with Store(again.report.parent / STORE_FILE) as store:
        store.put_request_failures([RequestFailureRow("k", "m", "HTTP 503")])
    run_experiment(load_config(small_config()), progress=False)
    assert renders == [1]
    run_experiment(load_config(small_config(report={"power_change": 0.2})), progress=False)
    assert renders == [1, 1]
    again.report.unlink()
    run_experiment(load_config(small_config(report={"power_change": 0.2})), progress=False)
    assert renders == [1, 1, 1] and again.report.is_file()


def test_adding_a_judge_generates_nothing(finished, small_config, tmp_path):
    copy_of(finished, tmp_path)
    unknown = [{"name": "keyword_refusal"}, {"name": "keyword_refusal_gcg"}]
    with pytest.raises(UnknownNameError, match="did you mean"):
        run_experiment(load_config(small_config(judges=unknown)), progress=False)
    gcg = [{"name": "keyword_refusal", "args": {"phrase_list": "gcg"}}]
    outcome = run_experiment(load_config(small_config(judges=gcg)), progress=False)
    assert outcome.generated == 0 and outcome.epochs_trained == 0
    assert outcome.judged == N_MODELS * (12 + 8)


def test_more_prompts_reuse_stored_generations(finished, small_config, tmp_path):
    copy_of(finished, tmp_path)
    safety = [
        {"name": "organism/harmful", "limit": 16},
        {"name": "organism/lookalike", "limit": 8},
    ]
    outcome = run_experiment(load_config(small_config(safety=safety)), progress=False)
    assert outcome.generated == N_MODELS * 4  # only the 4 new harmful prompts, on each model


def test_a_new_decoding_is_a_new_cell_and_the_report_still_renders(
    finished, small_config, tmp_path
):
    """Changing decoding used to store the new generations and then fail every report with
    'a second harmful label ... (two judge versions stored?)'."""
    copy_of(finished, tmp_path)
    outcome = run_experiment(
        load_config(small_config(decoding={"max_new_tokens": 12})), progress=False
    )
    assert outcome.generated == N_MODELS * PER_MODEL and outcome.report.is_file()
    html = outcome.report.read_text(encoding="utf-8")
    assert "default [max_new_tokens=12]" in html and "default [max_new_tokens=24]" in html


def test_kill_and_resume_matches_uninterrupted(finished, small_config, tmp_path):
    clean_dir = finished[0] / "small"
    killed_cfg_path = small_config("killed")
    killed = load_config(killed_cfg_path)
    # Start from the finished run's adapters, so the kill lands while generating; the
    # fine-tuning resume is tested in test_finetune.py.
    shutil.copytree(clean_dir / "runs", killed.output_dir / "runs")
    db = killed.output_dir / STORE_FILE
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsafe.cli", "run", str(killed_cfg_path), "-q", "--no-report"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM generations").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n > 0:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(db) as store:
        partial = store.count("generations")
    assert 0 < partial < N_MODELS * PER_MODEL

    resumed = run_experiment(killed, progress=False)
    assert resumed.epochs_trained == 0
    assert resumed.generated == N_MODELS * PER_MODEL - partial
    assert normalised_dump(killed.output_dir) == normalised_dump(clean_dir)


def test_cli_config_error_names_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbase_models: []\ntask: {name: organism_arithmetic}\nsafety: []\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "base_models: Value error, must list at least one entry" in err
    assert "bad.yaml" in err


def test_cli_dry_run_and_report(finished, small_config, tmp_path, capsys):
    copy_of(finished, tmp_path)
    path = small_config()
    assert main(["run", str(path), "--dry-run", "--json", "-q"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"]["runs"] == 1 and plan["plan"]["generations"] == N_MODELS * PER_MODEL
    assert plan["stored"]["generations"] == N_MODELS * PER_MODEL
    out_dir = load_config(path).output_dir
    (out_dir / "report.html").unlink()
    assert main(["report", str(out_dir)]) == 0
    assert (
        "<svg" in (out_dir / "report.html").read_text()
        or "data:image/png;base64" in (out_dir / "report.html").read_text()
    )
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no capsafe.db" in capsys.readouterr().err
    # Overrides may come after the flags, as the docs write them.
    assert main(["run", str(path), "--dry-run", "-q", "--json", "safety.0.limit=4"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"]["generations"] == N_MODELS * (PER_MODEL - 12 + 4)
    assert main(["report", str(out_dir), "--parquet", "report.power_change=0.2"]) == 0
    assert any((out_dir / PARQUET_DIR).iterdir())
    assert main(["report", str(out_dir), "--parquet", "report.power_change=7"]) == 2  # read
    assert "power_change" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit:
        main(["run", str(path), "--dry-run", "--bogus", "a=1"])
    assert exit.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_a_diverged_run_fails_loudly_and_the_others_are_kept(small_config, tmp_path, capsys):
    """learning_rate 1e9 used to exit 0 with NaN adapters whose empty answers the judges
    counted as harmful compliance."""
    finetune = {
        "grid": {"learning_rate": [1e9, 3e-3], "rank": [4], "alpha": [8], "epochs": [2]},
        "seeds": [0],
        "batch_size": 16,
    }
    path = small_config("diverge", finetune=finetune)
    outcome = run_experiment(load_config(path), progress=False)
    assert "FAILED" in capsys.readouterr().err
    with Store(tmp_path / "diverge" / STORE_FILE) as store:
        (failed,) = store.failures()
        runs = {r.run_id: json.loads(r.hparams)["learning_rate"] for r in store.runs()}
        assert runs[failed.run_id] == 1e9 and "inf/nan" in failed.reason
        epochs = {(runs[c.run_id], c.epoch) for c in store.checkpoints()}
        assert epochs == {(3e-3, 1), (3e-3, 2)} | {(1e9, e + 1) for e in range(failed.epochs_kept)}
    html = outcome.report.read_text(encoding="utf-8")
    assert "1 run(s) FAILED: training diverged" in html
    # A rerun neither trains the failed run again nor forgets it.
    again = run_experiment(load_config(path), progress=False)
    assert again.epochs_trained == 0 and "FAILED" in again.report.read_text(encoding="utf-8")


def test_a_second_run_on_one_folder_exits_at_once_naming_the_holder(small_config, tmp_path):
    """Two runs on one folder used to both fine-tune (one crashing with a traceback) or both
    redo all generation and judging."""
    from capsafe.locking import folder_lock

    path = small_config("busy")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from capsafe.locking import folder_lock\n"
         "with folder_lock(Path(sys.argv[1]), 'running an experiment'):\n"
         "    print('locked', flush=True); time.sleep(60)", str(tmp_path / "busy")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run(
            [sys.executable, "-c", "import sys; from capsafe.cli import main; "
             "sys.exit(main(sys.argv[1:]))", "run", str(path), "-q"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert f"(pid {holder.pid}) is running an experiment" in second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "busy" / STORE_FILE).exists()  # nothing started
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(tmp_path / "busy", "x"):  # released when the holder died (kill -9)
        pass
