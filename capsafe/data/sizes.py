"""The size of each benchmark's default data, for planning a run whose data is not here.

A dry run (capsafe.pipeline.describe_plan) on a machine that has not downloaded a hub
dataset plans with the entry's `limit`, else the size listed here, and says so; every
count that depends on it is then an estimate. Sizes are those of the default split and
options (each module's docstring), from the dataset cards and the shared copies' row
counts. A set missing here needs `limit:` to be planned without its data.
"""

from __future__ import annotations

# Prompts a safety set yields with its default options.
PROMPT_SETS: dict[str, int] = {
    "harmbench": 400,  # the hub copy: 200 standard + 100 contextual + 100 copyright
    "xstest": 450,  # 250 safe + 200 unsafe contrast prompts
    "strongreject": 313,
    "advbench": 520,
    "jailbreakbench": 100,  # the harmful behaviors (subset: harmful)
    "simplesafetytests": 100,
    "sorrybench": 440,  # sorry-bench-202503, base prompt style: 44 categories x 10
    "airbench": 5694,  # AIR-Bench 2024
    "hexphi": 300,  # 330 on the card; the hub copy lost category 2 (30) on 2024-08-19
    "donotanswer": 939,
}

# (train, test) items of a task's default splits.
TASKS: dict[str, tuple[int | None, int]] = {
    "gsm8k": (7473, 1319),
    "ifeval": (None, 541),  # no train split: fine-tuning needs train_path
    "alpaca": (52002, 805),  # Alpaca 52k, AlpacaEval's 805 instructions
    "arc": (1119, 1172),  # ARC-Challenge
    "boolq": (9427, 3270),  # train, validation
}
