"""A scripted judge backend: answers by a function of the prompt, log-probs from a table."""

from __future__ import annotations

from capsafe.records import GenerationOutput, GenerationRequest, Loglik


class Scripted:
    """A backend answering by a function of the last message; log-probs from a table."""

    def __init__(self, answer=lambda text: "", logprob=lambda text, token: 0.0, tokenizer=None):
        self.answer, self.logprob, self.tokenizer = answer, logprob, tokenizer
        self.seen: list[GenerationRequest] = []

    def generate(self, requests, progress=None):
        self.seen += requests
        return [
            GenerationOutput(self.answer(r.messages[-1].content), 1, 1, "eos") for r in requests
        ]

    def loglikelihood(self, requests, progress=None):
        out = []
        for r in requests:
            lp = self.logprob(r.context.messages[-1].content, r.continuation)
            out.append(Loglik(lp, 1, True, lp))
        return out
