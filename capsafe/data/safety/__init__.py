"""Safety benchmarks as prompt sets, one module per source; importing this registers them.

Each benchmark module reads its hub dataset by default, at a pinned revision where one
could be found (its HUB), and a local copy in the upstream format with `path:`; it names
the VERSION of the data it expects (`custom` reads only local files).
"""

from capsafe.data.safety import (  # noqa: F401  (registers)
    advbench,
    airbench,
    beavertails,
    custom,
    donotanswer,
    harmbench,
    hexphi,
    jailbreakbench,
    pku_saferlhf,
    simplesafetytests,
    sorrybench,
    strongreject,
    toxigen,
    wildguardtest,
    xstest,
)
