"""HEx-PHI (Qi et al., ICLR 2024, "Fine-tuning Aligned Language Models Compromises Safety,
Even When Users Do Not Intend To!"): 330 harmful instructions, 30 in each of 11 categories
drawn from Meta's and OpenAI's prohibited uses, all "harmful".

Reads the gated hub dataset LLM-Tuning-Safety/HEx-PHI (access is granted by hand: accept
its agreement, ask for access, log in), or a local folder holding its files: one CSV per
category, category_1.csv .. category_11.csv, one instruction per line and no header (so they
are read here as written, not through `datasets`). The authors removed category_2.csv (Child
Abuse Content) from the hub on 2024-08-19; from the hub category 2 is not read, and a local
copy that still has it reads it. `categories` picks some by number. Category is the
category's name from the dataset card; meta keeps its number. Ids are
"<number>/<digest of the instruction>".

    safety:
      - {name: hexphi, args: {categories: ["1", "4"]}}  # from the hub
      - {name: hexphi, path: local/HEx-PHI}

VERSION names the hub state read: HUB reads the newest revision (no commit sha of the
gated repository could be seen), the 2024-08-19 one without category 2.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from capsafe.data import files
from capsafe.data.base import DataContext, register_prompt_set
from capsafe.data.files import DataFileError, read_text
from capsafe.data.safety.common import Hub, content_id, drop_repeats, many_of, meta
from capsafe.records import PromptRecord

VERSION = "hex-phi@2024-08-19"
HUB = Hub("LLM-Tuning-Safety/HEx-PHI", revision=None, gated=True)
CATEGORIES = {
    "1": "Illegal Activity",
    "2": "Child Abuse Content",
    "3": "Hate/Harass/Violence",
    "4": "Malware",
    "5": "Physical Harm",
    "6": "Economic Harm",
    "7": "Fraud/Deception",
    "8": "Adult Content",
    "9": "Political Campaigning",
    "10": "Privacy Violation Activity",
    "11": "Tailored Financial Advice",
}
REMOVED_FROM_HUB = ("2",)


def instructions(path: Path) -> list[str]:
    """The instructions of one category file: one per line, no header (a quoted cell may
    hold commas or line breaks)."""
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    found = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != 1 or not cells[0].strip():
                raise DataFileError(
                    f"{path}:{reader.line_num}: {len(cells)} cells; a HEx-PHI file holds one "
                    "instruction per line (quote it if it has commas)"
                )
            found.append(cells[0])
    except csv.Error as err:
        raise DataFileError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None
    return found


def _file(path: Path | None, number: str, asked: bool) -> Path | None:
    name = f"category_{number}.csv"
    if path is None:
        return files.hub_file(HUB.dataset, name, revision=HUB.revision, gated=HUB.gated)
    if path.is_file() and path.name == name:
        return path
    if path.is_dir() and (path / name).is_file():
        return path / name
    if asked:
        raise DataFileError(f"{path}: no {name} (HEx-PHI category {CATEGORIES[number]!r})")
    return None


@register_prompt_set("hexphi")
def hexphi(
    ctx: DataContext, path: Path | None = None, categories: str | Iterable[str] | None = None
) -> list[PromptRecord]:
    wanted = many_of("hexphi", "categories", categories, tuple(CATEGORIES))
    if path is None and wanted and set(wanted) & set(REMOVED_FROM_HUB):
        raise ValueError(
            "prompt set 'hexphi': category 2 (Child Abuse Content) was removed from the hub "
            "on 2024-08-19; pass `path:` to a local copy that has category_2.csv"
        )
    folder = Path(path) if path is not None else None
    if folder is not None and not (folder.is_dir() or folder.name.startswith("category_")):
        raise DataFileError(f"{folder}: not a folder of HEx-PHI category_<n>.csv files")
    numbers = wanted or [n for n in CATEGORIES if folder is not None or n not in REMOVED_FROM_HUB]
    found = {n: _file(folder, n, asked=wanted is not None) for n in numbers}
    if not any(found.values()):
        raise DataFileError(f"{folder}: no HEx-PHI category_<n>.csv files")
    records = [
        PromptRecord(
            id=f"{number}/{content_id(text)}",
            text=text,
            source="hexphi",
            kind="harmful",
            category=CATEGORIES[number],
            meta=meta(category_id=number),
        )
        for number, file in found.items()
        if file is not None
        for text in instructions(file)
    ]
    # The same instruction twice in one file would repeat an id; keep it once.
    return drop_repeats(records, f"hexphi ({path or HUB.dataset})")
