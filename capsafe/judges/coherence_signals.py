"""Text signals of degenerate model output, each a pure function of the text (no model).

    repeated_ngram_share("a b c a b c")   # 0.25: 1 of the 4 word trigrams repeats an earlier one
    max_back_to_back("no no no no way")   # 4: one span repeated four times in a row
    compression_ratio("ha" * 50)          # about 0.13: loops compress far better than prose
    charset_stats("Hello \ufffd!")       # plain and odd character shares, U+FFFD count
    ends_mid_sentence("It was the")       # True: no closing punctuation

The coherence judge (capsafe.judges.coherence) combines these with a reference model's
perplexity and an embedding relevance score; its thresholds are calibrated on
capsafe.judges.coherence_set.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from typing import NamedTuple

_WORD = re.compile(r"\w+")
# A finished text ends in sentence punctuation (possibly followed by closing quotes or
# brackets), a closed code block, or a number (answers such as "#### 42"); a last line
# that is a list item counts as finished too, since lists often end without a period.
_FINISHED = re.compile(r"""([.!?\u2026:;)\]}]|```|\d)["'\u201d\u2019)\]]*$""")
_LIST_ITEM = re.compile(r"^\s*([-*\u2022]|\d+[.)])\s+\S")
# zlib's fixed overhead dominates very short texts, so the ratio is only read above this.
MIN_COMPRESS_CHARS = 40


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, underscore)."""
    return _WORD.findall(text.casefold())


def repeated_ngram_share(text: str, n: int = 3) -> float:
    """Share (0-1) of the text's word n-grams that repeat an earlier n-gram.

    1 - distinct / total over word n-grams; 0 for prose, near 1 for a loop. Texts with
    fewer than n words have no n-grams and score 0.
    """
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def max_back_to_back(text: str, max_width: int = 10) -> int:
    """The most times any span of 1..max_width words occurs back to back (1: none does).

    A loop repeats one phrase in a row; a list or a table repeats its structure and many
    words, but not the same span over and over, so this tells the two apart where the
    trigram share and compression, which read any repeated words, do not.
    """
    tokens = words(text)
    best = 1
    for width in range(1, max_width + 1):
        run = 0  # consecutive positions j with tokens[j] == tokens[j + width]
        for j in range(len(tokens) - width):
            run = run + 1 if tokens[j] == tokens[j + width] else 0
            best = max(best, 1 + run // width)
    return best


def compression_ratio(text: str) -> float:
    """zlib-compressed size / UTF-8 size (0-1+); loops compress well, so a low ratio.

    Texts under MIN_COMPRESS_CHARS bytes return 1.0 (no evidence either way): zlib's
    header and the lack of context make short texts look incompressible.
    """
    raw = text.encode("utf-8")
    if len(raw) < MIN_COMPRESS_CHARS:
        return 1.0
    return len(zlib.compress(raw, 9)) / len(raw)


class CharsetStats(NamedTuple):
    plain_share: float  # letters, digits and punctuation / non-space characters
    odd_share: float  # control, private-use, unassigned or replacement chars / non-space chars
    n_replacement: int  # U+FFFD, the mark of bytes that did not decode
    n_scripts: int  # distinct writing systems among the letters (Latin, Cyrillic, CJK, ...)


def _script(char: str) -> str:
    # The first word of the Unicode name is the script for letters ("LATIN SMALL LETTER A",
    # "CJK UNIFIED IDEOGRAPH-4E00", "CYRILLIC ..."); good enough to count distinct scripts.
    return unicodedata.name(char, "UNKNOWN").split(" ")[0]


def charset_stats(text: str) -> CharsetStats:
    """Character sanity of a text; an empty or all-space text has shares 0."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return CharsetStats(0.0, 0.0, 0, 0)
    letters = [c for c in chars if c.isalpha()]
    # Symbols outside ASCII (box drawing, arrows, emoji) are not "plain"; digits and
    # punctuation are, so arithmetic ("17 - 9 = 8.") reads as plain text.
    plain = sum(1 for c in chars if c.isalnum() or c.isascii() or unicodedata.category(c)[0] == "P")
    odd = sum(1 for c in chars if c == "\ufffd" or unicodedata.category(c) in {"Cc", "Co", "Cn"})
    return CharsetStats(
        plain_share=plain / len(chars),
        odd_share=odd / len(chars),
        n_replacement=text.count("\ufffd"),
        n_scripts=len({_script(c) for c in letters}),
    )


def ends_mid_sentence(text: str) -> bool:
    """True when the text stops without closing punctuation (cut off mid-sentence)."""
    stripped = text.rstrip()
    if not stripped or _FINISHED.search(stripped):
        return False
    last_line = stripped.rsplit("\n", 1)[-1]
    return not ("\n" in stripped and _LIST_ITEM.match(last_line))


def perplexity(logprob: float, n_tokens: int) -> float:
    """exp(-logprob / n_tokens): the per-token perplexity of a scored continuation."""
    import math

    if n_tokens <= 0:
        raise ValueError(f"perplexity needs at least one token, got n_tokens={n_tokens}")
    return math.exp(-logprob / n_tokens)
