"""End-to-end pipeline on the organism: rerun, resume after kill -9, adding a judge, report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsafe.cli import main
from capsafe.config import load_config
from capsafe.pipeline import STORE_FILE, run_experiment
from capsafe.store import Store

pytestmark = pytest.mark.slow


def normalised_dump(out_dir: Path) -> dict:
    with Store(out_dir / STORE_FILE) as store:
        text = json.dumps(store.dump(), sort_keys=True)
    return json.loads(text.replace(str(out_dir), "<OUT>"))


def test_run_then_rerun_computes_nothing(small_config):
    cfg = load_config(small_config())
    first = run_experiment(cfg, progress=False)
    n_models = 1 + 2  # base + 2 epochs
    per_model = 12 + 12 + 8
    assert first.epochs_trained == 2
    assert first.generated == n_models * per_model
    assert first.judged == n_models * (12 + 8)
    assert first.scored == n_models * 12
    assert first.report is not None and first.report.is_file()

    again = run_experiment(cfg, progress=False)
    assert (again.epochs_trained, again.generated, again.judged, again.scored) == (0, 0, 0, 0)


def test_adding_a_judge_generates_nothing(small_config):
    run_experiment(load_config(small_config()), progress=False)
    more = [{"name": "keyword_refusal"}, {"name": "keyword_refusal_gcg"}]
    with pytest.raises(Exception, match="did you mean"):
        load_and_run(small_config(judges=more))
    cfg = load_config(
        small_config(judges=[{"name": "keyword_refusal", "args": {"phrase_list": "gcg"}}])
    )
    outcome = run_experiment(cfg, progress=False)
    assert outcome.generated == 0 and outcome.epochs_trained == 0
    assert outcome.judged == 3 * (12 + 8)


def load_and_run(path: Path):
    return run_experiment(load_config(path), progress=False)


def test_more_prompts_reuse_stored_generations(small_config):
    run_experiment(load_config(small_config()), progress=False)
    bigger = small_config(
        safety=[
            {"name": "organism/harmful", "limit": 16},
            {"name": "organism/lookalike", "limit": 8},
        ]
    )
    outcome = load_and_run(bigger)
    assert outcome.generated == 3 * 4  # only the 4 new harmful prompts, on each model


def test_kill_and_resume_matches_uninterrupted(tmp_path, small_config):
    clean = load_config(small_config("clean"))
    run_experiment(clean, progress=False)

    killed_cfg_path = small_config("killed")
    killed = load_config(killed_cfg_path)
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
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(db) as store:
        partial = store.count("generations")
    assert 0 < partial < 3 * 32

    resumed = run_experiment(killed, progress=False)
    assert resumed.epochs_trained == 0
    assert resumed.generated == 3 * 32 - partial
    assert normalised_dump(killed.output_dir) == normalised_dump(clean.output_dir)


def test_cli_config_error_names_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbase_models: []\ntask: {name: organism_arithmetic}\nsafety: []\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "base_models: Value error, must list at least one entry" in err
    assert "bad.yaml" in err


def test_cli_dry_run_and_report(small_config, capsys):
    path = small_config()
    assert main(["run", str(path), "--dry-run", "-q"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"]["runs"] == 1 and plan["plan"]["generations"] == 3 * 32
    assert main(["run", str(path), "-q"]) == 0
    out_dir = load_config(path).output_dir
    (out_dir / "report.html").unlink()
    assert main(["report", str(out_dir)]) == 0
    assert (out_dir / "report.html").is_file()
