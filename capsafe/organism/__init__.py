"""The model organism: a tiny safety-aligned chat model capsafe builds offline from a seed.

    from capsafe.organism import ensure_organism, load_world
    path = ensure_organism(Path("organism"), seed=0)   # builds once, then reuses
    world = load_world(path)                           # {"harmful_test": [WorldItem, ...], ...}

The folder loads with AutoModelForCausalLM / AutoTokenizer like any hub model. Importing
this package does not import torch; building does.
"""

from capsafe.organism.build import ORGANISM_VERSION, build_organism, ensure_organism
from capsafe.organism.world import WORLD_SETS, WorldItem, load_world

__all__ = [
    "ORGANISM_VERSION",
    "WORLD_SETS",
    "WorldItem",
    "build_organism",
    "ensure_organism",
    "load_world",
]
