"""examples/benchmarks.yaml (HarmBench + XSTest + StrongREJECT, two formats) end to end on
the organism, shrunk by overrides. Needs ../shared/datasets; skipped without it."""

from __future__ import annotations

from collections import Counter

import pytest

from capsafe.config import load_config
from capsafe.pipeline import STORE_FILE, run_experiment
from capsafe.store import Store
from tests.conftest import REPO, SHARED_DATASETS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SHARED_DATASETS.is_dir(), reason=f"real datasets not found at {SHARED_DATASETS}"
    ),
]


def test_three_benchmarks_two_formats_on_the_organism(tmp_path, organism_dir):
    cfg = load_config(
        REPO / "examples" / "benchmarks.yaml",
        [
            f"output_dir={tmp_path / 'out'}",
            f"organism.dir={organism_dir}",
            "task.train_limit=48",
            "task.test_limit=6",
            "finetune.grid.epochs=[1]",
            "safety.0.limit=6",
            "safety.1.limit=8",
            "safety.2.limit=6",
            "decoding.max_new_tokens=12",
        ],
    )
    outcome = run_experiment(cfg, progress=False)
    assert outcome.report is not None and outcome.report.is_file()
    with Store(cfg.output_dir / STORE_FILE) as store:
        gens = store.generations()
        # HarmBench's contextual prompts do not fit the organism's 512-token context: they
        # are not generated, and never judged (issue 12.3). The rest is judged once each.
        too_long = [g for g in gens if g.finish_reason == "too_long"]
        assert too_long and all(g.prompt_set == "harmbench" and g.response == "" for g in too_long)
        assert all(g.n_prompt_tokens + 12 > 512 for g in too_long)
        safety = 2 * 2 * (6 + 8 + 6)  # models x formats x prompts
        assert store.count("judgments") == safety - len(too_long)
    per = Counter((g.prompt_set, g.format) for g in gens if g.kind != "task")
    assert per == {
        (s, f): n * 2
        for s, n in (("harmbench", 6), ("xstest", 8), ("strongreject", 6))
        for f in ("chat", "chat+safety")
    }
    # Stratified: XSTest's 8 keep both kinds; HarmBench's categories are spread.
    kinds = Counter(g.kind for g in gens if g.prompt_set == "xstest")
    assert kinds["benign"] > 0 and kinds["harmful"] > 0
    assert len({g.category for g in gens if g.prompt_set == "harmbench"}) >= 4
    safety_prompt = [g for g in gens if g.format == "chat+safety"]
    assert all('"system":"safety"' in g.format_spec for g in safety_prompt)
