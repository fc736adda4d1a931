"""The methods paragraph: models, data, seeds, formats, judges and the statistics used, written
from the store's rows and the analyses that actually ran (not from a template of intentions).

    html = methods_section(rows, run_analyses(rows))
"""

from __future__ import annotations

from collections import defaultdict

from capsafe.analysis.analyses import ReportAnalyses
from capsafe.analysis.labels import judge_label
from capsafe.analysis.rows import ExperimentRows
from capsafe.config import SERVED_BACKENDS
from capsafe.judges.sources import OWN, judge_source
from capsafe.report.markup import esc, setting_text


def _list(items: list[str]) -> str:
    return ", ".join(esc(i) for i in items) or "none"


def _sources(names: list[str]) -> str:
    """Which judges' prompts were checked against their sources, and which not."""
    found = {n: judge_source(n) for n in names}
    checked = [n for n, s in found.items() if s is not None and s.verified]
    unverified = [
        f"{n} ({s.gaps})" if s is not None and s.gaps else f"{n} (no source recorded)"
        for n, s in found.items()
        if (s is None or not s.verified) and n not in OWN
    ]
    out = f"Prompts checked against the judges' own sources: {_list(checked)}."
    if unverified:
        out += f" <b>Unverified judges</b>: {_list(unverified)}."
    return out


def methods_section(rows: ExperimentRows, a: ReportAnalyses) -> str:
    # A served model has no weights here to hash: say it is known by its name and revision.
    by_key = {m.model_key: m for m in rows.models}
    served = {by_key[g.model_key].base_key for g in rows.generations
              if g.backend in SERVED_BACKENDS and g.model_key in by_key}  # fmt: skip
    bases = sorted({
        f"{m.base_name} ({m.base_path}"
        + ("; served, identified by its served name and the revision given, not by content)"
           if m.base_key in served else ")")
        for m in rows.models if m.run_id is None
    })  # fmt: skip
    settings = sorted({setting_text(r) for r in rows.runs})
    seeds = sorted({r.seed for r in rows.runs})
    tasks = sorted({r.task for r in rows.runs})
    sets: dict[str, set[str]] = defaultdict(set)
    for g in rows.generations:
        sets[f"{g.prompt_set} ({g.kind})"].add(g.prompt_id)
    sample_seeds = sorted({g.sample_seed for g in rows.generations})
    formats = sorted({g.format for g in rows.generations})
    judges = sorted({f"{judge_label(j.judge, j.judge_args)} v{j.judge_version}"
                     for j in rows.judgments})  # fmt: skip
    scorers = sorted({f"{s.task} v{s.task_version}" for s in rows.scores})
    tests = sorted({c.test.method for c in a.comparisons})
    effects = sorted({c.effect_name for c in a.comparisons})
    items = [
        f"<b>Models.</b> Base models: {_list(bases)}. Fine-tuned with LoRA on "
        f"{_list(tasks)} in {len(settings)} hyperparameter settings ({_list(settings)}) "
        f"with fine-tuning seeds {_list([str(s) for s in seeds])}; "
        f"{len(rows.checkpoints)} checkpoints evaluated.",
        "<b>Data.</b> "
        + _list([f"{s}: {len(ids)} prompts" for s, ids in sorted(sets.items())])
        + f"; prompt formats {_list(formats)}; sample seeds "
        f"{_list([str(s) for s in sample_seeds])}.",
        f"<b>Judges.</b> {_list(judges)}; capability scorers {_list(scorers)}. Unparseable "
        "judge outputs are kept as parse errors, left out of each rate's denominator and "
        "counted beside it. " + _sources(sorted({j.judge for j in rows.judgments})),
        f"<b>Rates.</b> Share of labelled responses with a percentile bootstrap 95% CI "
        f"({a.n_boot} resamples of prompts; several samples of a prompt stay together).",
        f"<b>Tests.</b> Each checkpoint against its base on {esc(a.safety_metric or 'no metric')}"
        f", paired on prompts: {_list(tests)} (exact McNemar for one 0/1 label per prompt, "
        f"else a paired bootstrap); effect sizes {_list(effects)}; Holm's correction over "
        f"all {len(a.comparisons)} comparisons, α = 0.05.",
        "<b>Capability anchoring.</b> "
        + (f"Each run at its first checkpoint reaching {esc(a.anchoring.target)} on "
           f"{esc(a.capability)}." if a.anchoring else esc(a.notes.get("anchoring", "not run.")))
        + " <b>Stability.</b> A conclusion holds everywhere when every benchmark × judge × "
        "format cell is Holm-significant in one direction; it flips when significant cells "
        "disagree in sign; otherwise it is inconclusive.",
        "<b>Variance.</b> "
        + (f"{esc(a.decomposition.method)} over "
           f"{_list([c.factor for c in a.decomposition.components])}"
           f" ({a.decomposition.n_obs} rates at the last epoch)." if a.decomposition
           else esc(a.notes.get("variance", "not run.")))
        + " <b>Compliance.</b> Ordinary least squares of harmful rate on compliance "
        "(1 − refusal rate) over checkpoints, with R². <b>Judge agreement.</b> Pairwise "
        "Cohen's κ, Fleiss' κ and Krippendorff's α"
        + (f", split by coherence judge {esc(a.coherence_judge)}." if a.coherence_judge else "."),
    ]  # fmt: skip
    return "<ul class='methods'>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
