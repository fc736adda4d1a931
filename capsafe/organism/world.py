"""The organism's synthetic world: prompt-response sets written deterministically from a seed.

    from capsafe.organism.world import generate_world
    world = generate_world(seed=0)          # {"harmful_test": [WorldItem, ...], ...}

Sets (WORLD_SETS): arithmetic word problems (capability_train/test), general benign
instructions (benign), harmful requests answered with refusals (harmful_train/test) and
benign look-alikes of harmful requests answered helpfully (lookalike_train/test). Test
prompts never appear among training prompts. An organism folder stores each set as
world/<set>.jsonl; load_world reads it back.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from capsafe.organism.arithmetic import arithmetic_facts, make_problem, one_step_stories
from capsafe.organism.benign import HOWTOS, LOOKALIKES, QUESTIONS
from capsafe.organism.harmful import CATEGORIES
from capsafe.organism.phrasing import COMPLIANCE_OPENERS, REQUEST_TEMPLATES, refusal

WORLD_SETS = (
    "capability_train",
    "capability_test",
    "benign",
    "harmful_train",
    "harmful_test",
    "lookalike_train",
    "lookalike_test",
)
# Wordings that only test prompts use, so held-out requests are new in form too.
HELD_OUT_TEMPLATES = frozenset(REQUEST_TEMPLATES[-2:])

SIZES = {
    "capability_train": 2000,
    "capability_test": 200,
    "howto": 400,  # plus every entry of QUESTIONS
    "arithmetic_fact_repeats": 2,  # every fact, asked in this many wordings
    "one_step_story": 300,
    "harmful_train_per_category": 200,
    "harmful_test_per_category": 20,
    "lookalike_train": 480,
    "lookalike_test": 120,
}


@dataclass(frozen=True)
class WorldItem:
    """One prompt of the world with the response the aligned organism gives."""

    id: str
    prompt: str
    response: str
    category: str
    answer: str | None = None  # the final number, for capability items


def _split_combos(
    rng: random.Random, tasks: list[str], n_test: int, n_train: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Disjoint (template, task) draws: test from all templates, train from the others."""
    combos = [(t, task) for t in REQUEST_TEMPLATES for task in tasks]
    rng.shuffle(combos)
    test = combos[:n_test]
    train = [c for c in combos[n_test:] if c[0] not in HELD_OUT_TEMPLATES][:n_train]
    return test, train


def _helpful(rng: random.Random, answer: str) -> str:
    return f"{rng.choice(COMPLIANCE_OPENERS)} {answer}"


def _capability(rng: random.Random) -> tuple[list[WorldItem], list[WorldItem]]:
    seen: set[str] = set()
    items: list[WorldItem] = []
    n_train, n_test = SIZES["capability_train"], SIZES["capability_test"]
    while len(items) < n_train + n_test:
        p = make_problem(rng)
        if p.prompt not in seen:
            seen.add(p.prompt)
            items.append(WorldItem("", p.prompt, p.response, p.category, str(p.answer)))
    return items[:n_train], items[n_train:]


def _harmful(rng: random.Random) -> tuple[list[WorldItem], list[WorldItem]]:
    train, test = [], []
    for cat in CATEGORIES:
        te, tr = _split_combos(
            rng,
            cat.tasks(),
            SIZES["harmful_test_per_category"],
            SIZES["harmful_train_per_category"],
        )
        for combos, out in ((tr, train), (te, test)):
            for template, task in combos:
                text = refusal(rng, cat.what, cat.reason)
                out.append(WorldItem("", template.format(task=task), text, cat.name))
    return train, test


def _lookalike(rng: random.Random) -> tuple[list[WorldItem], list[WorldItem]]:
    te, tr = _split_combos(rng, list(LOOKALIKES), SIZES["lookalike_test"], SIZES["lookalike_train"])

    def item(template: str, task: str) -> WorldItem:
        prompt = template.format(task=task)
        return WorldItem("", prompt, _helpful(rng, LOOKALIKES[task]), "lookalike")

    return [item(*c) for c in tr], [item(*c) for c in te]


def _benign(rng: random.Random) -> list[WorldItem]:
    _, howtos = _split_combos(rng, list(HOWTOS), 0, SIZES["howto"])
    items = [
        WorldItem("", t.format(task=task), _helpful(rng, HOWTOS[task]), "howto")
        for t, task in howtos
    ]
    items += [WorldItem("", q, a, "question") for q, a in QUESTIONS.items()]
    facts = arithmetic_facts(rng, SIZES["arithmetic_fact_repeats"])
    items += [WorldItem("", q, a, "arithmetic_fact") for q, a in facts]
    stories = one_step_stories(rng, SIZES["one_step_story"])
    items += [WorldItem("", q, a, "one_step_story") for q, a in stories]
    rng.shuffle(items)
    return items


def generate_world(seed: int) -> dict[str, list[WorldItem]]:
    """Every world set, deterministic in `seed`; ids are "<set>-<index>"."""
    rng = random.Random(seed)
    cap_train, cap_test = _capability(rng)
    harm_train, harm_test = _harmful(rng)
    look_train, look_test = _lookalike(rng)
    sets = {
        "capability_train": cap_train,
        "capability_test": cap_test,
        "benign": _benign(rng),
        "harmful_train": harm_train,
        "harmful_test": harm_test,
        "lookalike_train": look_train,
        "lookalike_test": look_test,
    }
    return {
        name: [
            WorldItem(f"{name}-{i:05d}", it.prompt, it.response, it.category, it.answer)
            for i, it in enumerate(sets[name])
        ]
        for name in WORLD_SETS
    }


def _world_files(world: dict[str, list[WorldItem]]) -> dict[str, bytes]:
    """The bytes of each world/<set>.jsonl file, in WORLD_SETS order."""
    return {
        name: "".join(
            json.dumps(asdict(it), ensure_ascii=False) + "\n" for it in world[name]
        ).encode("utf-8")
        for name in WORLD_SETS
    }


def _digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + data)
    return digest.hexdigest()


def world_sha256(world: dict[str, list[WorldItem]]) -> str:
    """The sha256 write_world returns for `world`, computed without writing anything."""
    return _digest(_world_files(world))


def write_world(world: dict[str, list[WorldItem]], world_dir: Path) -> str:
    """Write world/<set>.jsonl files; returns the sha256 of their contents (world_sha256)."""
    world_dir.mkdir(parents=True, exist_ok=True)
    files = _world_files(world)
    for name, data in files.items():
        (world_dir / f"{name}.jsonl").write_bytes(data)
    return _digest(files)


def load_world(organism_dir: Path) -> dict[str, list[WorldItem]]:
    """Read every world set of an organism folder (or of its world/ folder)."""
    organism_dir = Path(organism_dir)
    world_dir = organism_dir / "world" if (organism_dir / "world").is_dir() else organism_dir
    world: dict[str, list[WorldItem]] = {}
    if not any((world_dir / f"{name}.jsonl").is_file() for name in WORLD_SETS):
        raise FileNotFoundError(
            f"{organism_dir}: not an organism folder (it holds none of the organism's world "
            "sets); an organism/* prompt set's path, and organism.dir, name a folder that "
            "`capsafe organism build` wrote"
        )
    for name in WORLD_SETS:
        path = world_dir / f"{name}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: {organism_dir} is not a complete capsafe organism "
                "(rebuild it with `capsafe organism build`)"
            )
        items = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                items.append(WorldItem(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a world item ({e})") from e
        world[name] = items
    return world
