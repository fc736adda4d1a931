"""Any lm-evaluation-harness task as capsafe's capability task, through lm-eval as a library.

lm-eval builds the prompts (its doc_to_text, with its own few-shot context when num_fewshot
> 0), applies its filters and its metric; capsafe's backends answer them and capsafe's store
keeps the scores, at every checkpoint like a built-in task's. Needs `pip install -e
".[lmeval]"`. The task is stored as `lm_eval/<task>`, its version being the task's own
(`metadata.version`) with lm-eval's package version.

    task: {name: lm_eval, args: {task: gsm8k, num_fewshot: 5}}
    task: {name: lm_eval, path: my_tasks/, args: {task: my_task}}   # a folder of task YAMLs

- generate_until: scored on the response cut at the task's `until` strings (capsafe's
  backends stop only at the model's end of text, so the cut is made here, as lm-eval's HF
  model makes it), then through the task's filter (`filter`: a name of its filter_list,
  default the first) and its metric (`metric`, default the first): correct means the
  metric's full mark, 1. The task's generation_kwargs are its default decoding
  (`decoding`: max_gen_toks, else lm-eval's 256; greedy unless do_sample).
- multiple_choice: each option is scored by log-likelihood as lm-eval sends it (its
  target_delimiter, then the option) and the argmax wins; `metric` acc (default), acc_norm
  (per character) or acc_bytes (per byte), as lm-eval computes them.
- Any other output type (loglikelihood, loglikelihood_rolling) is refused, and so are
  groups, tags, tasks defined by a Python class, and tasks whose items need several
  contexts (winogrande) or several sampled answers (`repeats` > 1).

Options: `path` (or `include_path`) a folder of task YAMLs that lm-eval indexes beside its
own (`include_defaults: false`: only those, which is faster to index); `num_fewshot`
(default: the task's); `fewshot_seed` (lm-eval's 1234); `train_split`: the dataset split to
fine-tune on where the task names no training_split. Training pairs are doc_to_text (zero
shot) and the gold target. A record's prompt is lm-eval's plain-text context; the
experiment's format decides whether a chat template wraps it. Edit a task YAML's scoring
without bumping its metadata.version and stored scores are not recomputed.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import math
import numbers
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capsafe.data.base import DataContext, Scoring, register_task
from capsafe.data.files import DataFileError, HubUnavailable
from capsafe.data.tasks.choice import choice_record, gold_index, record_options
from capsafe.errors import UserError
from capsafe.records import Loglik, PromptRecord, Score, TrainExample

NAME = "lm_eval"
ADAPTER_VERSION = "1"  # bump when this module changes what it builds or scores
FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed (lm_eval.defaults)
CHOICE_METRICS = ("acc", "acc_norm", "acc_bytes")
INSTALL = 'lm-evaluation-harness is not installed: pip install -e ".[lmeval]"'


def _manager(folder: Path | str | None, defaults: bool) -> Any:
    """lm-eval's TaskManager over its own tasks (with `defaults`) and the YAMLs in `folder`."""
    # Indexing lm-eval's own ~14,000 task names takes seconds: once per process, and again
    # for a folder only when a YAML in it changed.
    yamls = sorted(Path(folder).rglob("*.y*ml")) if folder is not None else []
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in yamls)
    return _indexed(str(folder) if folder is not None else None, defaults, stamp)


@functools.lru_cache(maxsize=4)
def _indexed(folder: str | None, defaults: bool, stamp: tuple[tuple[str, int], ...]) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=folder, include_defaults=defaults)


def _unknown(name: str, manager: Any, where: str) -> UserError:
    close = difflib.get_close_matches(name, manager.all_tasks, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return UserError(
        f"unknown lm-eval task {name!r}{hint} ({len(manager.all_subtasks)} tasks {where}; "
        "`lm-eval ls tasks` lists lm-eval's own, and `path:` adds a folder of task YAMLs)"
    )


def _config(name: str, manager: Any, where: str) -> Any:
    """lm-eval's TaskConfig of `name`, read from its index (no data is loaded)."""
    from lm_eval.config.task import TaskConfig
    from lm_eval.tasks._index import Kind

    entry = manager.task_index.get(name)
    if entry is None:
        raise _unknown(name, manager, where)
    if entry.kind in (Kind.GROUP, Kind.TAG):
        members = [n for n, e in manager.task_index.items() if name in e.tags]
        members = members or list((entry.cfg or {}).get("task") or [])
        shown = ", ".join(str(m) for m in members[:5]) + (", ..." if len(members) > 5 else "")
        raise UserError(
            f"lm-eval {entry.kind.name.lower()} {name!r} names several tasks ({shown}); "
            "capsafe measures one task: name one of them"
        )
    raw = entry.cfg or {}
    if entry.kind != Kind.TASK or "class" in raw:
        raise UserError(f"lm-eval task {name!r} is defined by a Python class; capsafe "
                        "reads tasks configured in YAML")  # fmt: skip
    fields = {f.name for f in dataclasses.fields(TaskConfig)}
    return TaskConfig(**{k: v for k, v in raw.items() if k in fields})


@dataclasses.dataclass(frozen=True)
class Settings:
    """How one lm-eval task is measured: its config and the choices the user made."""

    cfg: Any  # lm-eval's TaskConfig, read from its index
    metric: str
    default_metric: str  # the task's own: another one is part of the version
    num_fewshot: int
    fewshot_seed: int
    train_split: str | None = None
    filter: str = "none"  # generate_until: the name of one of its filter_list pipelines
    default_filter: str = "none"


class LMEvalTask:
    """What every lm-eval task shares: its name and version, its records and train pairs."""

    scoring: Scoring

    def __init__(self, manager: Any, settings: Settings) -> None:
        import lm_eval

        self._manager, self._settings, self._cfg = manager, settings, settings.cfg
        self._task = str(self._cfg.task)
        self.name = f"{NAME}/{self._task}"
        version = (self._cfg.metadata or {}).get("version", "none")
        self.version = f"{ADAPTER_VERSION}+task-{version}+lm_eval-{lm_eval.__version__}"
        if settings.metric != settings.default_metric:
            self.version += f"+metric-{settings.metric}"
        self._lm: Any = None
        self._records: list[PromptRecord] | None = None
        self._docs: dict[str, dict] = {}

    def _built(self) -> Any:
        """lm-eval's Task, built (and its dataset loaded) on first use."""
        if self._lm is None:
            try:
                self._lm = self._manager.load(self._task)["tasks"][self._task]
            except ConnectionError as err:  # the hub, offline or unreachable
                raise HubUnavailable(f"lm-eval task {self._task!r}: dataset "
                                     f"{self._cfg.dataset_path!r} could not be loaded ({err})"
                                     ) from err  # fmt: skip
            except OSError as err:
                raise DataFileError(f"lm-eval task {self._task!r}: {err}") from err
            except Exception as err:  # the task's own YAML, template or code
                raise UserError(
                    f"lm-eval could not build task {self._task!r} ({type(err).__name__}: {err})"
                ) from err
            if getattr(self._lm, "multiple_input", 0):
                raise UserError(f"lm-eval task {self._task!r} gives each option its own "
                                "context (like winogrande); capsafe scores options after "
                                "one context")  # fmt: skip
        return self._lm

    def _options(self, doc: dict) -> list[str]:
        return [str(o) for o in self._built().doc_to_choice(doc)] if self._cfg.doc_to_choice else []

    def _golds(self, doc: dict, options: Sequence[str]) -> list[int | str]:
        """The gold target(s) of a doc, an index into `options` wherever they are given."""
        target = self._built().doc_to_target(doc)
        golds = target if isinstance(target, list) else [target]
        return [options.index(g) if isinstance(g, str) and g in options else g for g in golds]

    def _target_text(self, doc: dict) -> str:
        options = self._options(doc)
        gold = self._golds(doc, options)[0]
        return options[gold] if isinstance(gold, int) and options else str(gold)

    def _prompt(self, doc: dict) -> str:
        text = self._built().doc_to_text(doc)
        if not isinstance(text, str):
            raise UserError(
                f"lm-eval task {self._task!r}: doc_to_text gave {type(text).__name__}, not text"
            )
        return text

    def _record(self, id: str, text: str, doc: dict) -> PromptRecord:
        raise NotImplementedError  # each output type makes its own

    def test_prompts(self) -> list[PromptRecord]:
        if self._records is None:
            lm, shots = self._built(), self._settings.num_fewshot
            if shots and getattr(lm, "sampler", None) is None:
                raise UserError(
                    f"lm-eval task {self._task!r} has no few-shot split; num_fewshot must be 0"
                )
            # lm-eval draws every doc's shots from one seeded sampler, in doc order: all
            # docs are built here, so each keeps its lm-eval context whatever the limit.
            lm.set_fewshot_seed(self._settings.fewshot_seed)
            records, seen = [], Counter[str]()
            for doc in lm.eval_docs:
                # The item, not its position or its shots: stable under reordering and
                # the same whatever num_fewshot. A repeated item gets ~2, ~3 in order.
                item = [self._prompt(doc), self._target_text(doc), self._options(doc)]
                id = f"{self._task}-{hashlib.sha256(json.dumps(item).encode()).hexdigest()[:12]}"
                seen[id] += 1
                id += f"~{seen[id]}" if seen[id] > 1 else ""
                text = lm.fewshot_context(
                    doc=doc, num_fewshot=shots, gen_prefix=lm.doc_to_prefix(doc)
                )
                self._docs[id] = doc
                records.append(self._record(id, text, doc))
            self._records = records
        return list(self._records)

    def _doc(self, record: PromptRecord) -> dict:
        self.test_prompts()
        if record.id not in self._docs:
            raise DataFileError(f"lm-eval task {self._task!r}: item {record.id!r} is no "
                                "longer in its test split (its data changed)")  # fmt: skip
        return self._docs[record.id]

    def train_examples(self) -> list[TrainExample]:
        lm, split = self._built(), self._settings.train_split
        splits = ", ".join(sorted(lm.dataset))
        if split is None:
            if not lm.has_training_docs():
                raise UserError(f"lm-eval task {self._task!r} has no training split (its "
                                f"dataset has {splits}); fine-tuning needs one: give "
                                "task.args.train_split")  # fmt: skip
            docs = lm.training_docs()
        elif split not in lm.dataset:
            raise UserError(
                f"lm-eval task {self._task!r}: no split {split!r} (its dataset has {splits})"
            )
        elif split in (self._cfg.test_split or self._cfg.validation_split,):
            raise UserError(f"lm-eval task {self._task!r}: split {split!r} is the one it "
                            "is scored on; train on another")  # fmt: skip
        else:
            docs = lm.dataset[split]
            if callable(lm.config.process_docs):  # as lm-eval prepares its own splits
                docs = lm.config.process_docs(docs)
        return [TrainExample(self._prompt(d), self._target_text(d)) for d in docs]


class LMEvalGenerate(LMEvalTask):
    """A generate_until task: the response, cut at `until`, filtered, then the metric.

    `until`: the task's stop strings, which capsafe's backends do not stop at; `decoding`:
    its generation_kwargs as capsafe's decoding (the task's default, see data/decoding.py).
    """

    scoring: Scoring = "generate"

    def __init__(self, manager: Any, settings: Settings) -> None:
        from lm_eval.defaults import DEFAULT_MAX_GEN_TOKS
        from lm_eval.models.utils import normalize_gen_kwargs

        super().__init__(manager, settings)
        if settings.filter != settings.default_filter:
            self.version += f"+filter-{settings.filter}"
        kwargs = normalize_gen_kwargs(self._cfg.generation_kwargs, DEFAULT_MAX_GEN_TOKS)
        self.until: list[str] = list(kwargs["until"])
        self.decoding: dict[str, Any] = {
            "max_new_tokens": kwargs["max_gen_toks"],
            "temperature": float(kwargs["temperature"]) if kwargs["do_sample"] else 0.0,
            **({"top_p": float(kwargs["top_p"])} if "top_p" in kwargs else {}),
        }

    def _record(self, id: str, text: str, doc: dict) -> PromptRecord:
        return PromptRecord(id, text, self.name, "task", None, self._target_text(doc))

    def score(self, response: str, record: PromptRecord) -> Score:
        from lm_eval.api.instance import Instance
        from lm_eval.models.utils import postprocess_generated_text

        lm, doc, name = self._built(), self._doc(record), self._settings.filter
        cut = postprocess_generated_text(response, self.until, None)
        # lm-eval's filters run over Instances (as its evaluator holds them): one here, with
        # the one response. _filters is the task's own list of its filter_list pipelines.
        inst = Instance("generate_until", doc, (record.text, {}), 0, resps=[cut])
        next(f for f in lm._filters if f.name == name).apply([inst])
        got = inst.filtered_resps[name]
        value = lm.process_results(doc, [got]).get(self._settings.metric)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise UserError(f"lm-eval task {self._task!r}: metric {self._settings.metric!r} "
                            f"gives no number per item ({value!r}); choose another with "
                            "task.args.metric")  # fmt: skip
        v = float(value)
        return Score(v >= 1, got if isinstance(got, str) else str(got), v if 0 <= v <= 1 else None)


def _size(metric: str, option: str) -> int:
    """What lm-eval divides an option's log-likelihood by: acc_norm its characters,
    acc_bytes its UTF-8 bytes, acc nothing."""
    return {"acc": 1, "acc_norm": len(option), "acc_bytes": len(option.encode())}[metric]


class LMEvalChoice(LMEvalTask):
    """A multiple_choice task: the option with the highest (normalised) log-likelihood.

    A record keeps the gold option's index in `reference`, and every gold index (a task with
    several right options) as JSON in meta["golds"].
    """

    scoring: Scoring = "loglik"

    def _record(self, id: str, text: str, doc: dict) -> PromptRecord:
        options = self._options(doc)
        golds = self._golds(doc, options)
        if not all(isinstance(g, int) and 0 <= g < len(options) for g in golds):
            target = self._built().doc_to_target(doc)
            raise UserError(f"lm-eval task {self._task!r}: an item's target {target!r} is "
                            f"not one of its {len(options)} options")  # fmt: skip
        return choice_record(id, text, self.name, options, int(golds[0]), golds=json.dumps(golds))

    def _gold_indices(self, record: PromptRecord) -> list[int]:
        return json.loads(record.meta.get("golds") or "null") or [gold_index(record)]

    def choices(self, record: PromptRecord) -> list[str]:
        """The options as lm-eval sends them: its target_delimiter (" "), then the text."""
        return [f"{self._cfg.target_delimiter}{o}" for o in record_options(record)]

    def score_choices(self, logliks: Sequence[Loglik], record: PromptRecord) -> Score:
        """value: the gold options' share of the probability mass over the options."""
        options = record_options(record)
        if len(logliks) != len(options):
            raise ValueError(
                f"record {record.id!r}: {len(options)} options but {len(logliks)} log-likelihoods"
            )
        metric, golds = self._settings.metric, self._gold_indices(record)
        per = [
            ll.logprob / max(1, _size(metric, o)) for ll, o in zip(logliks, options, strict=True)
        ]
        best = max(range(len(options)), key=per.__getitem__)  # ties go to the first, as argmax
        top = max(ll.logprob for ll in logliks)
        mass = [math.exp(ll.logprob - top) for ll in logliks]
        return Score(best in golds, options[best], sum(mass[g] for g in golds) / sum(mass))

    def score(self, response: str, record: PromptRecord) -> Score:
        """A generated answer to a choice item (it is scored by likelihood): the option whose
        text it is, exactly."""
        options = record_options(record)
        said = [i for i, o in enumerate(options) if response.strip() == o.strip()]
        got = said[0] if said else None
        return Score(got in self._gold_indices(record), None if got is None else options[got])


def _check(ctx: object, path: Path | None, task: str, include_path: Path | str | None,
           include_defaults: bool, num_fewshot: int | None, **_: object) -> None:  # fmt: skip
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"task should name an lm-eval task, got {task!r}")
    if path is not None and include_path is not None:
        raise ValueError("give the folder of task YAMLs once: path or include_path")
    if not include_defaults and path is None and include_path is None:
        raise ValueError("include_defaults: false leaves no tasks; give path, a folder of YAMLs")
    if num_fewshot is not None and (not isinstance(num_fewshot, int) or num_fewshot < 0):
        raise ValueError(f"num_fewshot should be a whole number >= 0, got {num_fewshot!r}")


def _pick(what: str, given: str | None, default: str, allowed: Sequence[str], task: str) -> str:
    if given is not None and given not in allowed:
        raise UserError(f"lm-eval task {task!r}: {what} {given!r} is not one capsafe can score "
                        f"it by (choose among {', '.join(allowed)})")  # fmt: skip
    return given or default


@register_task(NAME, check=_check)
def lm_eval_task(
    ctx: DataContext,
    path: Path | None = None,
    *,
    task: str,
    include_path: Path | str | None = None,
    include_defaults: bool = True,
    num_fewshot: int | None = None,
    fewshot_seed: int = FEWSHOT_SEED,
    metric: str | None = None,
    filter: str | None = None,
    train_split: str | None = None,
) -> LMEvalTask:
    _check(ctx, path, task, include_path, include_defaults, num_fewshot)
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise UserError(INSTALL) from None
    from lm_eval.api.registry import DEFAULT_METRIC_REGISTRY

    folder = path if path is not None else include_path
    if folder is not None and not Path(folder).exists():
        raise DataFileError(f"{folder}: no such folder of lm-eval task YAMLs")
    manager = _manager(folder, include_defaults)
    cfg = _config(task, manager, "known" + (f", with those in {folder}" if folder else ""))
    kind = cfg.output_type
    if kind not in ("generate_until", "multiple_choice"):
        raise UserError(f"lm-eval task {task!r} has output_type {kind!r}; capsafe scores "
                        "generate_until (free generation) and multiple_choice (option "
                        "log-likelihood) tasks")  # fmt: skip
    if (cfg.repeats or 1) > 1:
        raise UserError(f"lm-eval task {task!r} samples {cfg.repeats} answers per item "
                        "(repeats); capsafe scores each response on its own")  # fmt: skip
    metrics = [m["metric"] for m in cfg.metric_list or []] or DEFAULT_METRIC_REGISTRY[kind]
    shots = num_fewshot if num_fewshot is not None else cfg.num_fewshot or 0
    if kind == "multiple_choice":
        default = metrics[0] if metrics[0] in CHOICE_METRICS else "acc"
        chosen = _pick("metric", metric, default, CHOICE_METRICS, task)
        return LMEvalChoice(manager, Settings(cfg, chosen, default, shots, fewshot_seed,
                                              train_split))  # fmt: skip
    filters = [f["name"] for f in cfg.filter_list or []] or ["none"]
    settings = Settings(cfg, _pick("metric", metric, metrics[0], metrics, task), metrics[0],
                        shots, fewshot_seed, train_split,
                        _pick("filter", filter, filters[0], filters, task), filters[0])  # fmt: skip
    return LMEvalGenerate(manager, settings)
