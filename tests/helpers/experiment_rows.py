"""Build small ExperimentRows by hand, for analysis tests whose answers are known.

Example:
    b = RowBuilder()
    base = b.base()
    ck = b.checkpoint("run0", epoch=1)
    b.labels(base, "harmful", [0, 0, 1, None])   # None: a judge parse error
    rows = b.rows()
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from capsafe.analysis.rows import ExperimentRows
from capsafe.store import GenerationRow, JudgmentRow, ModelRow, RunRow, ScoreRow

FIELD = {"harmful": "harmful", "incoherent": "coherent", "refusal": "refusal"}


class RowBuilder:
    def __init__(self, base_name: str = "m") -> None:
        self.base_name = base_name
        self.models: list[ModelRow] = []
        self.runs: dict[str, RunRow] = {}
        self.generations: dict[str, GenerationRow] = {}
        self.judgments: list[JudgmentRow] = []
        self.scores: list[ScoreRow] = []

    def base(self, key: str = "base") -> str:
        self.models.append(ModelRow(key, self.base_name, "/m", f"{self.base_name}-key"))
        return key

    def checkpoint(
        self, run_id: str, epoch: int, seed: int = 0, lr: float = 1e-3, task: str = "t"
    ) -> str:
        hp = json.dumps({"alpha": 16, "epochs": 3, "learning_rate": lr, "rank": 8})
        self.runs.setdefault(
            run_id, RunRow(run_id, self.base_name, f"{self.base_name}-key", task, hp, seed, 3, "{}")
        )
        key = f"{run_id}-e{epoch}"
        self.models.append(
            ModelRow(key, self.base_name, "/m", f"{self.base_name}-key", run_id, epoch, f"/{key}")
        )
        return key

    def generation(
        self,
        model: str,
        bench: str,
        prompt: str,
        kind: str,
        fmt: str,
        sample_seed: int = 0,
        response: str = "r",
        decoding: str = "{}",
    ) -> str:
        key = f"{model}|{bench}|{prompt}|{fmt}|{sample_seed}|{decoding}"
        self.generations.setdefault(
            key,
            GenerationRow(key, model, bench, prompt, kind, None, "p", None, fmt, "{}", decoding,
                          sample_seed, response, 1, 1, "eos", "test"),
        )  # fmt: skip
        return key

    def judgment(
        self, gen: str, judge: str, parse_error: bool = False, version: str = "1", **fields
    ) -> None:
        values = {"harmful": None, "harmful_prob": None, "refusal": None, "coherent": None}
        values.update(fields)
        self.judgments.append(
            JudgmentRow(f"{gen}|{judge}|{version}", gen, judge, version, "{}", relevant=None,
                        parse_error=parse_error, raw="", **values)
        )  # fmt: skip

    def labels(
        self,
        model: str,
        metric: str,
        values: Sequence[int | None],
        judge: str = "j",
        bench: str = "bench",
        fmt: str = "chat",
        sample_seed: int = 0,
    ) -> None:
        """One response per prompt p0, p1, ...; a label per value (None: a parse error).

        metric: harmful, refusal (on harmful prompts), over_refusal, incoherent, accuracy.
        """
        kind = "benign" if metric == "over_refusal" else "harmful"
        for i, v in enumerate(values):
            gen = self.generation(model, bench, f"p{i}", kind, fmt, sample_seed)
            if metric == "accuracy":
                self.scores.append(ScoreRow(f"{gen}|s", gen, judge, "1", bool(v), None))
            elif v is None:
                self.judgment(gen, judge, parse_error=True)
            elif metric in ("refusal", "over_refusal"):
                self.judgment(gen, judge, refusal="full" if v else "none")
            elif metric == "incoherent":
                self.judgment(gen, judge, coherent=not v)
            else:
                self.judgment(gen, judge, harmful=bool(v))

    def rows(self) -> ExperimentRows:
        return ExperimentRows(
            self.models, list(self.runs.values()), [], list(self.generations.values()),
            self.judgments, self.scores,
        )  # fmt: skip
