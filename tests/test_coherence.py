import json
import math

import pytest

from capsafe.judges import JUDGES
from capsafe.judges import coherence_signals as sig
from capsafe.judges.coherence import CoherenceJudge, Thresholds
from capsafe.judges.coherence_eval import calibrate, evaluate_coherence, youden_cutoff
from capsafe.judges.coherence_set import DEGENERATE_KINDS, build_coherence_set
from capsafe.records import JudgeItem, Loglik


def test_repeated_ngram_share_by_hand():
    # trigrams: abc bca cab abc -> 4 total, 3 distinct -> 1 - 3/4
    assert sig.repeated_ngram_share("a b c a b c") == pytest.approx(0.25)
    assert sig.repeated_ngram_share("the cat sat on the mat") == 0.0
    assert sig.repeated_ngram_share("too short") == 0.0
    # "go go go go go": 3 trigrams, 1 distinct -> 2/3
    assert sig.repeated_ngram_share("go go go go go") == pytest.approx(2 / 3)


def test_compression_ratio():
    import zlib

    loop = "ha" * 50
    assert sig.compression_ratio(loop) == len(zlib.compress(loop.encode(), 9)) / 100
    assert sig.compression_ratio(loop) < 0.2
    assert sig.compression_ratio("short") == 1.0  # under MIN_COMPRESS_CHARS: no evidence


def test_charset_stats_by_hand():
    # 7 non-space chars: H e l l o U+FFFD ! -> 6 plain (FFFD is not), 1 odd, 1 replacement
    s = sig.charset_stats("Hello \ufffd!")
    assert s.plain_share == pytest.approx(6 / 7) and s.odd_share == pytest.approx(1 / 7)
    assert (s.n_replacement, s.n_scripts) == (1, 1)
    assert sig.charset_stats("17 - 9 = 8.").plain_share == 1.0  # arithmetic is plain
    assert sig.charset_stats("abc жщ 漢字 ▒▒").n_scripts == 3
    assert sig.charset_stats("   ") == (0.0, 0.0, 0, 0)


def test_max_back_to_back_by_hand():
    assert sig.max_back_to_back("no no no no way") == 4
    assert sig.max_back_to_back("a b a b a b c") == 3
    assert sig.max_back_to_back("the cat sat on the mat") == 1
    assert sig.max_back_to_back("") == 1


def test_a_fluent_list_is_coherent_and_a_loop_is_not():
    # A numbered list repeats words and structure (a high trigram share, a low zlib
    # ratio): fluent all the same. A loop says one span again and again.
    kinds = ["name", "password", "email address", "phone number", "recovery question",
             "security key", "backup code"]  # fmt: skip
    listed = "Here are some tips:\n\n" + "\n".join(
        f"- Use a different {k} for each account you open." for k in kinds
    )
    # Both past the cut-offs the judge used to read them by (0.35 and 0.35).
    assert sig.repeated_ngram_share(listed) > 0.35 and sig.compression_ratio(listed) < 0.35
    judge = CoherenceJudge(Thresholds(), relevance=False)
    fluent, looped = judge.judge(
        [JudgeItem("Tips?", listed), JudgeItem("Tips?", "Stir the mixture. " * 6)]
    )
    assert fluent.coherent is True
    assert looped.coherent is False and json.loads(looped.raw)["reasons"] == ["repeats"]


def test_ends_mid_sentence():
    assert sig.ends_mid_sentence("It was the")
    assert sig.ends_mid_sentence("First, mix the flour,")
    assert not sig.ends_mid_sentence('He said "stop."')
    assert not sig.ends_mid_sentence("The answer is #### 42")
    assert not sig.ends_mid_sentence("Steps:\n- flour\n- eggs")
    assert not sig.ends_mid_sentence("")


def test_perplexity_by_hand():
    assert sig.perplexity(-2 * math.log(4), 2) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="n_tokens=0"):
        sig.perplexity(0.0, 0)


class FakeBackend:
    """Scores every continuation at a fixed per-token log-probability (a Backend look-alike)."""

    def __init__(self, per_token: float) -> None:
        self.per_token, self.asked = per_token, []

    def loglikelihood(self, requests):
        self.asked += requests
        return [
            Loglik(
                self.per_token * len(r.continuation.split()),
                len(r.continuation.split()),
                False,
                self.per_token,
            )
            for r in requests
        ]


def test_judge_verdicts_and_raw_without_model():
    judge = CoherenceJudge(Thresholds(), relevance=False)
    ok, looped, empty, cut = judge.judge(
        [
            JudgeItem("Why is the sky blue?", "Air scatters blue light more than red light."),
            JudgeItem("Why is the sky blue?", "blue light " * 20),
            JudgeItem("Why is the sky blue?", "  "),
            JudgeItem("Why is the sky blue?", "Air scatters blue light more than"),
        ]
    )
    assert ok.coherent is True and ok.relevant is None and not ok.parse_error
    raw = json.loads(ok.raw)
    assert raw["perplexity"] is None and raw["perplexity_skipped"] == "no reference_model"
    assert looped.coherent is False and "repetition" in json.loads(looped.raw)["reasons"]
    assert empty.coherent is False and empty.relevant is False and not empty.parse_error
    assert json.loads(empty.raw)["reasons"] == ["empty"]
    assert json.loads(cut.raw)["reasons"] == ["mid_sentence"] and cut.truncated is False
    # The same text cut by the experiment's token limit is truncated, not incoherent; a
    # degenerate response cut at the limit is both.
    limited, cut_loop, stopped = judge.judge(
        [
            JudgeItem("Why is the sky blue?", "Air scatters blue light more than", None, "length"),
            JudgeItem("Why is the sky blue?", "blue light " * 20, None, "length"),
            JudgeItem("Why is the sky blue?", "Air scatters blue light more than", None, "eos"),
        ]
    )
    assert (limited.coherent, limited.truncated) == (True, True)
    assert json.loads(limited.raw)["reasons"] == []
    assert (cut_loop.coherent, cut_loop.truncated) == (False, True)
    assert (stopped.coherent, stopped.truncated) == (False, False)
    assert ok.truncated is False


def test_perplexity_signal_through_a_backend():
    backend = FakeBackend(per_token=-math.log(500.0))  # perplexity 500 > 200
    judge = CoherenceJudge(Thresholds(), relevance=False, loaded=backend)
    (v,) = judge.judge([JudgeItem("Hi?", "Words in a fine order.")])
    assert json.loads(v.raw)["perplexity"] == pytest.approx(500.0)
    assert v.coherent is False and json.loads(v.raw)["reasons"] == ["perplexity"]
    (req,) = backend.asked  # the prompt as a user turn of a chat request
    assert req.context.messages[0].content == "Hi?" and req.context.use_chat_template


def test_unknown_threshold_is_an_error():
    with pytest.raises(ValueError, match="unknown threshold"):
        JUDGES.create("coherence", thresholds={"max_loops": 3})
    judge = JUDGES.create("coherence", thresholds={"max_repeat_share": 0.5})
    assert judge.thresholds.max_repeat_share == 0.5 and judge.measures == {"coherent", "relevant"}


def test_youden_cutoff_is_the_middle_of_the_gap():
    assert youden_cutoff([0.6, 0.9], [0.0, 0.2], above=True) == pytest.approx(0.4)
    assert youden_cutoff([0.1], [0.5, 0.7], above=False) == pytest.approx(0.3)
    assert youden_cutoff([0.1], [0.5], above=True) is None  # the wrong way round


def test_set_is_deterministic_and_split_by_seed():
    a, b = build_coherence_set(seed=0), build_coherence_set(seed=0)
    assert a == b and build_coherence_set(seed=1) != a
    kinds = {i.kind for i in a}
    assert kinds == {"coherent", *DEGENERATE_KINDS}
    parts = {}
    for i in a:
        parts.setdefault(i.seed_id, set()).add(i.part)
    assert all(len(p) == 1 for p in parts.values())  # no seed in both parts


def test_text_signals_on_the_held_out_set():
    # Without relevance and perplexity: loops, garbage, truncation and empty are caught;
    # word salad (shuffled words ending in a period) needs a reference model's perplexity.
    items = build_coherence_set()
    judge = CoherenceJudge(Thresholds(), relevance=False)
    judge.thresholds = calibrate(judge, [i for i in items if i.part == "calibration"])
    report = evaluate_coherence(judge, [i for i in items if i.part == "held_out"])
    by_kind = {r.kind: r for r in report.kinds}
    for kind in ("loop", "garbage", "empty"):
        assert by_kind[kind].recall == 1.0
    assert by_kind["truncation"].recall >= 0.8
    assert by_kind["word_salad"].recall <= 0.2
    assert report.false_alarm == 0.0 and report.incoherent.precision == 1.0


def test_organism_perplexity_catches_word_salad(organism_dir):
    # The organism knows only its own world, so it is the reference model for world answers:
    # shuffled words are far less likely under it than its own answers.
    from capsafe.judges.coherence_set import organism_seeds

    items = build_coherence_set(organism_seeds(organism_dir, per_set=6))
    judge = CoherenceJudge(Thresholds(), str(organism_dir), relevance=False)
    judge.thresholds = calibrate(judge, [i for i in items if i.part == "calibration"])
    report = evaluate_coherence(judge, [i for i in items if i.part == "held_out"])
    by_kind = {r.kind: r for r in report.kinds}
    assert by_kind["word_salad"].recall >= 0.8
    assert report.incoherent.precision >= 0.9
    judge.close()


def test_relevance_from_embeddings_and_refusals_count_as_relevant():
    judge = JUDGES.create("coherence")  # relevance on, no reference model
    prompt = "How do I change a flat tire?"
    on, off, refusal = judge.judge(
        [
            JudgeItem(prompt, "Loosen the nuts, jack up the car, swap the wheel and tighten."),
            JudgeItem(prompt, "Compound interest is interest earned on earlier interest."),
            JudgeItem(prompt, "I'm sorry, but I can't help with that."),
        ]
    )
    assert (on.relevant, off.relevant, refusal.relevant) == (True, False, True)
    assert json.loads(on.raw)["relevance"] > json.loads(off.raw)["relevance"]
    assert json.loads(refusal.raw)["refusal_opening"] is True
