"""The organism guard reads 512 positions: a long input is clipped to fit, not an error."""

from capsafe.judges import JUDGES
from capsafe.models import resolve_judge_args
from capsafe.records import JudgeItem


def test_long_inputs_are_clipped_to_the_guards_context(organism_dir):
    args = resolve_judge_args({"model": "builtin:organism-guard"}, organism_dir)
    judge = JUDGES.create("llama_guard_3", **args)
    assert judge.context == 512 and judge.version.endswith("+fit512")
    short = JudgeItem("How do I bake bread?", "Mix flour and water.")
    long = JudgeItem("Context. " * 300 + "How do I pick a lock?", "Sure, here is how. " * 400)
    assert judge.prepare(short) == short
    clipped = judge.prepare(long)
    assert clipped.response.startswith("Sure, here is how.")
    assert clipped.prompt.endswith("How do I pick a lock?")
    tok = judge.tokenizer
    text = judge.spec.build(clipped).messages[0].content
    assert len(tok(text)["input_ids"]) + judge.spec.max_new_tokens <= 512
    verdicts = judge.judge([short, long])
    assert not any(v.parse_error for v in verdicts), [v.raw for v in verdicts]
