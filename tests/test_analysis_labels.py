"""analysis/labels.py: truncated and incoherent are two labels, from one coherence judgment."""

from capsafe.analysis.labels import cell_labels
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
