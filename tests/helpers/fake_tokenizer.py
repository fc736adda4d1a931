"""A tokenizer over a fixed vocabulary, for judge tests that score first tokens without a model.

A text that is a vocabulary entry is one token; any other text is one token per character
(each character its own id past the vocabulary), so a "score token" the vocabulary lacks
is visibly several tokens.

    tok = VocabTokenizer(["safe", "unsafe", " Yes"])
    tok("unsafe", add_special_tokens=False)["input_ids"]   # [1]
"""

from __future__ import annotations


class VocabTokenizer:
    def __init__(self, vocab: list[str]) -> None:
        self.vocab = list(vocab)
        self._ids = {t: i for i, t in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        if text in self._ids:
            return {"input_ids": [self._ids[text]]}
        return {"input_ids": [len(self.vocab) + ord(c) for c in text]}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(
            self.vocab[i] if i < len(self.vocab) else chr(i - len(self.vocab)) for i in ids
        )

    def convert_tokens_to_ids(self, token: str) -> int:
        return self._ids.get(token, -1)

    def convert_ids_to_tokens(self, i: int) -> str | None:
        return self.vocab[i] if 0 <= i < len(self.vocab) else None
