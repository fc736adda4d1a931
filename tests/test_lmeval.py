"""The lm_eval task: lm-evaluation-harness tasks read offline from task YAMLs in tmp_path.

Each task's data is a local JSONL file (dataset_path: json), indexed through the task
folder (capsafe's `path`, lm-eval's include_path) with the hub switched off.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from capsafe.data import TASKS, DataContext
from capsafe.errors import UserError
from capsafe.records import Loglik
from tests.conftest import REPO

pytest.importorskip("lm_eval")

CTX = DataContext(organism_dir=REPO / ".capsafe" / "organism")

# An organism-style arithmetic task: a worked answer ending "#### n", the number read by a
# regex filter and compared by exact match after dropping the working (as lm-eval's gsm8k).
ARITHMETIC_YAML = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    train: {train}
    test: {test}
output_type: generate_until
training_split: train
fewshot_split: train
test_split: test
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{response}}}}"
generation_kwargs:
  until: ["\\n\\n"]
  do_sample: false
  max_gen_toks: 48
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "#### (\\\\-?[0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    regexes_to_ignore: ["(?s).*#### "]
metadata:
  version: 2.0
"""

CHOICE_YAML = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    dev: {dev}
    test: {test}
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: {target}
doc_to_choice: choices
metric_list:
  - metric: acc
metadata:
  version: 1.0
"""

ROLLING_YAML = """\
task: capsafe_rolling
dataset_path: json
dataset_kwargs:
  data_files:
    test: {test}
output_type: loglikelihood_rolling
test_split: test
doc_to_text: ""
doc_to_target: "{{{{question}}}}"
"""

TRAIN = [
    ("Sam has 2 apples and buys 3. How many apples does he have?", 5),
    ("Ana has 6 pens and gives away 4. How many pens does she have?", 2),
    ("Leo has 1 cup and finds 7. How many cups does he have?", 8),
]
TEST = [
    ("Kim has 4 eggs and buys 5. How many eggs does she have?", 9),
    ("Tom has 9 hats and loses 3. How many hats does he have?", 6),
]
CHOICES = [
    {"question": "Which is a colour?", "choices": ["red", "dog", "seven"], "label": 0},
    {"question": "Which is a number?", "choices": ["cat", "seven", "blue"], "label": 1},
]


def working(question: str, answer: int) -> str:
    return f"Here is how: the answer is {answer}.\n#### {answer}"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_arithmetic(folder: Path, name: str, train: list, test: list) -> None:
    rows = [{"question": q, "response": working(q, a)} for q, a in train]
    tests = [{"question": q, "response": working(q, a)} for q, a in test]
    train_file = write_jsonl(folder / f"{name}_train.jsonl", rows)
    test_file = write_jsonl(folder / f"{name}_test.jsonl", tests)
    (folder / f"{name}.yaml").write_text(
        ARITHMETIC_YAML.format(name=name, train=train_file, test=test_file)
    )


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    """A folder of task YAMLs, their data beside them; the hub switched off meanwhile."""
    folder = tmp_path_factory.mktemp("lm_tasks")
    write_arithmetic(folder, "capsafe_arith", TRAIN, TEST)
    dev = write_jsonl(folder / "mc_dev.jsonl", CHOICES[:1])
    test = write_jsonl(folder / "mc_test.jsonl", CHOICES)
    for name, target in (("capsafe_mc", "label"), ("capsafe_mc_text", '"{{choices[label]}}"')):
        (folder / f"{name}.yaml").write_text(
            CHOICE_YAML.format(name=name, dev=dev, test=test, target=target)
        )
    (folder / "rolling.yaml").write_text(ROLLING_YAML.format(test=test))
    import datasets.config
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
            mp.setenv(var, "1")
        mp.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield folder


def make(folder: Path, name: str, **args):
    args = {"include_defaults": False, **args}
    return TASKS.create("lm_eval", ctx=CTX, path=folder, where="task.args", task=name, **args)


def test_generate_records_follow_lm_evals_own_contexts(tasks):
    from lm_eval.tasks import TaskManager

    t = make(tasks, "capsafe_arith", num_fewshot=2)
    assert (t.name, t.scoring) == ("lm_eval/capsafe_arith", "generate")
    assert t.version.startswith("1+task-2.0+lm_eval-")
    assert t.decoding == {"max_new_tokens": 48, "temperature": 0.0}
    assert t.until == ["\n\n"]
    records = t.test_prompts()
    assert [r.reference for r in records] == [working(q, a) for q, a in TEST]
    assert all(r.source == "lm_eval/capsafe_arith" and r.kind == "task" for r in records)
    # The contexts lm-eval itself builds for its evaluator, with the same seed.
    lm = TaskManager(include_path=str(tasks), include_defaults=False).load("capsafe_arith")
    own = lm["tasks"]["capsafe_arith"]
    own.set_config("num_fewshot", 2)
    own.set_fewshot_seed(1234)
    own.build_all_requests()
    assert [r.text for r in records] == [inst.args[0] for inst in own.instances]
    assert records[0].text.endswith("\n\n" + TEST[0][0]) and "#### " in records[0].text
    # Ids name the item: the same without shots and whatever the file order.
    assert [r.id for r in make(tasks, "capsafe_arith").test_prompts()] == [r.id for r in records]
    write_arithmetic(tasks, "capsafe_arith_reversed", TRAIN, TEST[::-1])
    backwards = make(tasks, "capsafe_arith_reversed").test_prompts()
    assert [r.id.split("-")[-1] for r in backwards] == [r.id.split("-")[-1] for r in records][::-1]


@pytest.mark.parametrize(
    "response, correct, extracted",
    [
        ("Here is how: 4 + 5 = 9.\n#### 9", True, "9"),
        ("#### 8", False, "8"),
        ("I do not know.", False, "[invalid]"),
        # Cut at the task's stop string "\n\n": what follows is never read.
        ("#### 9\n\nKim has 1 egg. #### 1", True, "9"),
        ("Let me think.\n\n#### 9", False, "[invalid]"),
    ],
)
def test_generate_scoring_cuts_at_stop_strings_then_filters(tasks, response, correct, extracted):
    t = make(tasks, "capsafe_arith")
    record = t.test_prompts()[0]
    score = t.score(response, record)
    assert (score.correct, score.extracted) == (correct, extracted)
    assert score.value == float(correct)


def test_train_examples_and_train_split(tasks):
    pairs = make(tasks, "capsafe_arith").train_examples()
    assert [(p.prompt, p.response) for p in pairs] == [(q, working(q, a)) for q, a in TRAIN]
    with pytest.raises(UserError, match=r"no training split \(its dataset has dev, test\).*"
                       "train_split"):  # fmt: skip
        make(tasks, "capsafe_mc").train_examples()
    pairs = make(tasks, "capsafe_mc", train_split="dev").train_examples()
    assert [(p.prompt, p.response) for p in pairs] == [(f"Question: {CHOICES[0]['question']}"
                                                         "\nAnswer:", "red")]  # fmt: skip
    with pytest.raises(UserError, match="is scored on"):
        make(tasks, "capsafe_mc", train_split="test").train_examples()
    with pytest.raises(UserError, match="no split 'train'"):
        make(tasks, "capsafe_mc", train_split="train").train_examples()


@pytest.mark.parametrize("name", ["capsafe_mc", "capsafe_mc_text"])
def test_multiple_choice_scores_options_by_likelihood(tasks, name):
    t = make(tasks, name)
    assert t.scoring == "loglik" and getattr(t, "decoding", None) is None
    first, second = t.test_prompts()
    assert (first.text, first.reference, second.reference) == (
        "Question: Which is a colour?\nAnswer:", "0", "1")  # fmt: skip
    assert t.choices(first) == [" red", " dog", " seven"]  # lm-eval's target_delimiter
    lls = [Loglik(-3.0, 1, False, -3.0), Loglik(-1.0, 1, True, -1.0), Loglik(-2.0, 1, False, -2.0)]
    score = t.score_choices(lls, second)
    assert (score.correct, score.extracted) == (True, "seven")
    assert score.value == pytest.approx(1 / (1 + math.exp(-2) + math.exp(-1)))  # gold's share
    assert not t.score_choices(lls, first).correct


def test_acc_norm_divides_by_characters(tasks):
    record = make(tasks, "capsafe_mc").test_prompts()[0]  # red, dog, seven
    lls = [Loglik(-3.3, 1, False, 0), Loglik(-3.0, 1, False, 0), Loglik(-4.0, 1, False, 0)]
    assert make(tasks, "capsafe_mc").score_choices(lls, record).extracted == "dog"
    normed = make(tasks, "capsafe_mc", metric="acc_norm")
    assert normed.score_choices(lls, record).extracted == "seven"  # -4/5 beats -3/3
    assert normed.version.endswith("+metric-acc_norm")


def test_refusals_name_the_task(tasks):
    with pytest.raises(UserError, match=r"unknown lm-eval task 'capsafe_arithm'; did you mean "
                       "'capsafe_arith'"):  # fmt: skip
        make(tasks, "capsafe_arithm")
    with pytest.raises(UserError, match="'capsafe_rolling' has output_type 'loglikelihood_roll"):
        make(tasks, "capsafe_rolling")
    with pytest.raises(UserError, match="metric 'bleu'.*exact_match"):
        make(tasks, "capsafe_arith", metric="bleu")
    with pytest.raises(UserError, match="filter 'flexible'.*strict-match"):
        make(tasks, "capsafe_arith", filter="flexible")
    with pytest.raises(UserError, match="no such folder"):
        make(tasks / "missing", "capsafe_arith")


def test_a_missing_lm_eval_names_the_extra(tasks, monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now fails
    with pytest.raises(UserError, match=r'pip install -e "\.\[lmeval\]"'):
        make(tasks, "capsafe_arith")


def test_importing_capsafe_does_not_import_lm_eval():
    code = "import sys, capsafe.pipeline, capsafe.data; TASKS = capsafe.data.TASKS; TASKS.names()\n"
    code += "assert 'lm_eval' not in sys.modules, 'lm_eval imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.slow
def test_lm_evals_own_gsm8k_is_read_without_its_data():
    t = TASKS.create("lm_eval", ctx=CTX, task="gsm8k")  # the index only: nothing downloaded
    assert t.name == "lm_eval/gsm8k" and "+task-3.0+" in t.version
    assert t.decoding == {"max_new_tokens": 256, "temperature": 0.0}  # lm-eval's default
    assert "Question:" in t.until
    with pytest.raises(UserError, match="did you mean 'gsm8k'"):
        TASKS.create("lm_eval", ctx=CTX, task="gsm8kk")
    with pytest.raises(UserError, match="group 'mmlu' names several tasks"):
        TASKS.create("lm_eval", ctx=CTX, task="mmlu")


@pytest.mark.slow
def test_an_lm_eval_task_is_scored_at_every_checkpoint(tasks, organism_dir, tmp_path):
    from capsafe.config import load_config
    from capsafe.organism import load_world
    from capsafe.pipeline import STORE_FILE, run_experiment
    from capsafe.store import Store
    from tests.conftest import write_small_config

    world = load_world(organism_dir)
    folder = tmp_path / "organism_tasks"
    folder.mkdir()
    pairs = [(i.prompt, i.answer) for i in world["capability_train"][:64]]
    tests = [(i.prompt, i.answer) for i in world["capability_test"][:8]]
    write_arithmetic(folder, "organism_lm", pairs, tests)
    # The organism's own worked answers ("... #### 10") pass the task's filter and metric.
    own = make(folder, "organism_lm")
    answers = [i.response for i in world["capability_test"][:8]]
    assert all(own.score(a, r).correct for a, r in zip(answers, own.test_prompts(), strict=True))
    task = {"name": "lm_eval", "path": str(folder), "test_limit": 8,
            "args": {"task": "organism_lm", "include_defaults": False}}  # fmt: skip
    finetune = {"grid": {"learning_rate": [3e-3], "rank": [4], "alpha": [8], "epochs": [1]},
                "seeds": [0], "batch_size": 16}  # fmt: skip
    path = write_small_config(
        tmp_path, organism_dir, "lm", task=task, finetune=finetune, decoding={},
        safety=[{"name": "organism/harmful", "limit": 4}],
    )  # fmt: skip
    outcome = run_experiment(load_config(path), progress=False, report=False)
    assert outcome.epochs_trained == 1
    with Store(load_config(path).output_dir / STORE_FILE) as store:
        models = store.models()
        gens = [g for g in store.generations() if g.prompt_set == "lm_eval/organism_lm"]
        scores = {s.generation_key: s for s in store.scores()}
    assert len(models) == 2  # the base and its one epoch
    for m in models:
        mine = [g for g in gens if g.model_key == m.model_key]
        assert len(mine) == 8 and all(g.key in scores for g in mine)
        assert all(json.loads(g.decoding)["max_new_tokens"] == 48 for g in mine)
    assert {s.task for s in scores.values()} == {"lm_eval/organism_lm"}
