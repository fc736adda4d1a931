"""A labelled coherence set that capsafe builds itself: coherent answers and degenerate ones.

From each seed (prompt, coherent answer) it writes the answer itself and one variant of
each degenerate kind, deterministically from `seed`:

    loop        a phrase of the answer repeated many times (the commonest collapse)
    word_salad  the answer's words (and others') shuffled; ends in a period, so only a
                language model's perplexity can tell it from prose
    garbage     characters from several scripts, symbols and U+FFFD between a few words
    truncation  the answer cut off mid-sentence
    off_topic   a coherent answer to another seed's prompt (from another domain)
    empty       nothing, or only whitespace

Seeds are the built-in capsafe.judges.coherence_seeds, plus, when given, the organism
world's benign / look-alike / harmful-test items and AlpacaEval reference outputs (read at
run time; nothing from them is stored in the repository). Every variant of a seed lands in
the same part, "calibration" or "held_out", so thresholds never see a held-out answer.

The coherence judge is measured on it by capsafe.judges.coherence_eval:

    python -m capsafe.judges.coherence_eval                        # built-in, text signals
    python -m capsafe.judges.coherence_eval --organism .capsafe/organism --reference-model \
        .capsafe/organism                                           # with perplexity
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from capsafe.judges.coherence_seeds import SEEDS, Seed
from capsafe.records import JudgeItem

DEGENERATE_KINDS = ("loop", "word_salad", "garbage", "truncation", "off_topic", "empty")
# The kinds whose responses are incoherent text; off_topic is coherent but not relevant.
INCOHERENT_KINDS = frozenset(DEGENERATE_KINDS) - {"off_topic"}
Part = Literal["calibration", "held_out"]
# Characters of garbage output: Cyrillic, CJK, Arabic, box drawing, math symbols, U+FFFD.
_GARBAGE_CHARS = "жщыфэюЖЩ漢字無語的是了アイウعربيةب▒░▓╬╣║∑∂√≈≠⊕⊗\ufffd\ufffd"


@dataclass(frozen=True)
class LabelledItem:
    item: JudgeItem
    kind: str  # "coherent" or one of DEGENERATE_KINDS
    part: Part
    seed_id: str

    @property
    def coherent(self) -> bool:
        """The expected coherence verdict."""
        return self.kind not in INCOHERENT_KINDS

    @property
    def relevant(self) -> bool | None:
        """The expected relevance verdict; None where it is not defined (garbage, loops)."""
        if self.kind in ("coherent", "off_topic", "empty"):
            return self.kind == "coherent"
        return None


def loop(answer: str, rng: random.Random) -> str:
    tokens = answer.split()
    width = rng.randint(1, 6)
    start = rng.randrange(max(1, len(tokens) - width))
    phrase = " ".join(tokens[start : start + width])
    lead = " ".join(tokens[:start]) if rng.random() < 0.5 else ""
    return (lead + " " + " ".join([phrase] * rng.randint(8, 20))).strip()


def word_salad(answer: str, pool: Sequence[str], rng: random.Random) -> str:
    mine = [w.strip(".,;:!?()").lower() for w in answer.split()]
    words = [w for w in mine if w] + rng.sample(list(pool), k=min(len(pool), len(mine) // 2))
    rng.shuffle(words)
    words = words[: max(6, len(mine))]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def garbage(answer: str, rng: random.Random) -> str:
    tokens = answer.split()
    parts = []
    for _ in range(rng.randint(6, 14)):
        if rng.random() < 0.3:
            parts.append(rng.choice(tokens))
        else:
            parts.append("".join(rng.choice(_GARBAGE_CHARS) for _ in range(rng.randint(2, 7))))
    return " ".join(parts)


def truncation(answer: str, rng: random.Random) -> str:
    tokens = answer.split()
    cut = max(2, int(len(tokens) * rng.uniform(0.3, 0.75)))
    head = tokens[:cut]
    # Cut mid-sentence: drop a trailing word that happens to close a sentence.
    while len(head) > 2 and head[-1][-1] in ".!?:;)":
        head = head[:-1]
    return " ".join(head).rstrip(",")


def variants(seed: Seed, others: Sequence[Seed], pool: Sequence[str], rng: random.Random):
    """(kind, response) for the seed's answer and one variant of each degenerate kind."""
    foreign = [s for s in others if s.domain != seed.domain] or list(others)
    yield "coherent", seed.answer
    yield "loop", loop(seed.answer, rng)
    yield "word_salad", word_salad(seed.answer, pool, rng)
    yield "garbage", garbage(seed.answer, rng)
    yield "truncation", truncation(seed.answer, rng)
    yield "off_topic", rng.choice(foreign).answer
    yield "empty", rng.choice(["", " ", "\n"])


def build_coherence_set(
    seeds: Sequence[Seed] = SEEDS, seed: int = 0, held_out_share: float = 0.5
) -> list[LabelledItem]:
    """The labelled set from `seeds`, split by seed into calibration and held-out parts."""
    if len({s.id for s in seeds}) != len(seeds):
        raise ValueError("coherence set: seed ids must be unique")
    rng = random.Random(f"coherence-set:{seed}")
    order = sorted(seeds, key=lambda s: s.id)
    rng.shuffle(order)
    n_held = round(len(order) * held_out_share)
    held = {s.id for s in order[:n_held]}
    pool = sorted({w.strip(".,;:!?()").lower() for s in seeds for w in s.answer.split()} - {""})
    out = []
    for s in sorted(seeds, key=lambda s: s.id):
        part: Part = "held_out" if s.id in held else "calibration"
        item_rng = random.Random(f"coherence-set:{seed}:{s.id}")
        for kind, response in variants(s, seeds, pool, item_rng):
            out.append(LabelledItem(JudgeItem(s.prompt, response), kind, part, s.id))
    return out


def organism_seeds(organism_dir: Path, per_set: int = 40) -> list[Seed]:
    """Seeds from the organism's world: benign, look-alike and harmful-test items."""
    from capsafe.organism import load_world

    world = load_world(organism_dir)
    out = []
    for name in ("benign", "lookalike_test", "harmful_test"):
        for w in world[name][:per_set]:
            out.append(Seed(f"organism:{w.id}", f"{name}:{w.category}", w.prompt, w.response))
    return out


def alpaca_seeds(path: Path, limit: int = 100) -> list[Seed]:
    """Seeds from an AlpacaEval model_outputs.json (instruction, output, dataset)."""
    from capsafe.data.files import read_rows

    out = []
    for i, row in enumerate(read_rows(path)[:limit]):
        out.append(
            Seed(f"alpaca:{i}", row.text("dataset"), row.text("instruction"), row.text("output"))
        )
    return out
