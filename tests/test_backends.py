"""Generation backends on a tiny random chat model: batching, decoding, adapters, errors.

pytest tests/test_backends.py -q
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest
import torch

from capsafe.backends import BACKENDS, transformers_backend
from capsafe.backends.loading import encode_request, load_model, render_prompt, resolve_source
from capsafe.backends.transformers_backend import (
    TransformersBackend,
    decoding_key,
    generation_config,
    plan_batches,
)
from capsafe.errors import UserError
from capsafe.records import GenerationRequest, Message
from capsafe.registry import UnknownNameError
from tests.helpers.tiny_model import make_tiny_chat_model

PROMPTS = [
    "How do I compute 3 plus 4?",
    "bake",
    "Tell me how to bake bread, then tell me again, slowly and with care.",
    "I'm sorry",
    "Mix flour",
    "How do I compute 12 plus 30? Sure! Here is how:",
    "x",
    "Tell me",
]


def ask(text: str, **kwargs) -> GenerationRequest:
    return GenerationRequest(messages=(Message("user", text),), **kwargs)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The tiny chat model with weights re-drawn at a larger scale. At its stock init it
    echoes the last prompt token forever, which would let batching bugs pass unseen;
    these weights give varied tokens and some natural eos stops."""
    src = make_tiny_chat_model(tmp_path_factory.mktemp("tiny"))
    model = load_model(str(src), device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.25)
    out = tmp_path_factory.mktemp("lively")
    model.save_pretrained(out)
    for f in src.iterdir():
        if f.name.startswith(("tokenizer", "chat_template")):
            shutil.copy(f, out / f.name)
    return out


@pytest.fixture(scope="module")
def adapter_dir(model_dir, tmp_path_factory) -> Path:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    # init_lora_weights=False draws B at random too, so the adapter changes outputs at once
    config = LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    with warnings.catch_warnings():  # peft calls a deprecated transformers helper
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        peft_model = get_peft_model(load_model(str(model_dir), device="cpu"), config)
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def backend(model_dir):
    b = BACKENDS.create("transformers", model=str(model_dir), batch_size=3, device="cpu")
    yield b
    b.close()


def one_at_a_time(b: TransformersBackend, request: GenerationRequest) -> list[int]:
    """Plain model.generate on the unpadded prompt: the reference batching must match."""
    ids = torch.tensor([encode_request(b.tokenizer, request)])
    config = generation_config(request, b.eos_ids, b.pad_id)
    with torch.inference_mode():
        out = b.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
        )
    return out[0, ids.shape[1] :].tolist()


def expected(b: TransformersBackend, tokens: list[int]) -> tuple[str, int, str]:
    stop = next((i for i, t in enumerate(tokens) if t in b.eos_ids), None)
    if stop is None:
        return b.tokenizer.decode(tokens, skip_special_tokens=True), len(tokens), "length"
    return b.tokenizer.decode(tokens[:stop], skip_special_tokens=True), stop + 1, "eos"


def test_batched_greedy_equals_one_at_a_time_in_request_order(backend, monkeypatch):
    # Finished rows leave a batch every few tokens; make that happen often here.
    monkeypatch.setattr(transformers_backend, "COMPACT_EVERY", 4)
    requests = [
        ask(p, max_new_tokens=24, use_chat_template=i % 2 == 0) for i, p in enumerate(PROMPTS)
    ]
    calls = []
    outputs = backend.generate(requests, progress=calls.append)
    assert calls == [3, 3, 2]  # 8 requests at batch_size 3, reported after each batch
    reasons = set()
    for request, out in zip(requests, outputs, strict=True):
        text, n, reason = expected(backend, one_at_a_time(backend, request))
        assert (out.text, out.n_completion_tokens, out.finish_reason) == (text, n, reason)
        assert out.n_prompt_tokens == len(encode_request(backend.tokenizer, request))
        reasons.add(reason)
    assert reasons == {"eos", "length"}  # both stops and pads-after-eos were exercised


def test_left_padding_and_chat_template_on_off(backend, monkeypatch):
    seen = []
    real = backend.model.generate

    def spy(**kwargs):
        seen.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))
        return real(**kwargs)

    monkeypatch.setattr(backend.model, "generate", spy)
    two = (Message("system", "Be brief."), Message("user", "bake"))
    chat = GenerationRequest(messages=two, max_new_tokens=2)
    raw = GenerationRequest(messages=two, max_new_tokens=2, use_chat_template=False)
    longer = ask(PROMPTS[2], max_new_tokens=2)
    backend.generate([chat, raw, longer])
    ids, mask = seen[0]  # one batch: same decoding settings, batch_size 3
    texts = [backend.tokenizer.decode(row[m.bool()]) for row, m in zip(ids, mask, strict=True)]
    assert texts[0] == "Be brief.\n\nbake"  # sorted by length: the raw prompt is shortest
    assert texts[1] == render_prompt(backend.tokenizer, chat)
    assert texts[1].startswith("<|system|>\nBe brief.<|end|>\n<|user|>") and texts[1].endswith(
        "<|assistant|>\n"
    )
    assert mask[2].all() and not mask[0, 0] and mask[0, -1]  # pads on the left only
    assert (ids[0][~mask[0].bool()] == backend.pad_id).all()


def test_plan_batches_groups_by_settings_and_sorts_by_length():
    keys = ["a", "b", "a", "a", "b", "a"]
    assert plan_batches([5, 1, 3, 1, 9, 3], keys, batch_size=2) == [[3, 2], [5, 0], [1, 4]]
    # greedy ignores top_p and the seed, sampling does not
    assert decoding_key(ask("x", seed=1, top_p=0.5)) == decoding_key(ask("y", seed=2))
    assert decoding_key(ask("x", temperature=1.0, seed=1)) != decoding_key(
        ask("x", temperature=1.0, seed=2)
    )


def test_mixed_max_new_tokens_respect_each_limit(backend):
    requests = [ask(p, max_new_tokens=n) for p, n in zip(PROMPTS, [3, 9, 3, 9, 1, 9], strict=False)]
    for r, out in zip(requests, backend.generate(requests), strict=True):
        assert 1 <= out.n_completion_tokens <= r.max_new_tokens
        if out.finish_reason == "length":
            assert out.n_completion_tokens == r.max_new_tokens


def test_generation_config_eos_list_stops_and_counts(model_dir):
    b = TransformersBackend.load(str(model_dir), device="cpu")
    requests = [ask(p, max_new_tokens=16) for p in PROMPTS]
    refs = [one_at_a_time(b, r) for r in requests]
    # An extra eos id that some references emit and others never do.
    stop = next(
        t for t in refs[0][1:] if t not in b.eos_ids and any(t not in ref for ref in refs[1:])
    )
    b.model.generation_config.eos_token_id = [b.tokenizer.eos_token_id, stop]
    stopped = TransformersBackend(b.model, b.tokenizer, batch_size=8)
    assert stopped.eos_ids == [b.tokenizer.eos_token_id, stop]
    outputs = stopped.generate(requests)
    assert {o.finish_reason for o in outputs} == {"eos", "length"}
    for ref, out in zip(refs, outputs, strict=True):
        text, n, reason = expected(stopped, ref)
        assert (out.text, out.n_completion_tokens, out.finish_reason) == (text, n, reason)
    # One row per batch: each batch ends with every row done, some within the first chunk.
    stopped.batch_size = 1
    assert stopped.generate(requests) == outputs
    b.close()


def test_sampling_is_seeded_and_leaves_global_rng_alone(backend):
    requests = [ask(p, temperature=1.0, top_p=0.9, seed=7, max_new_tokens=8) for p in PROMPTS]
    state = torch.random.get_rng_state()
    first = backend.generate(requests)
    assert torch.equal(state, torch.random.get_rng_state())
    assert backend.generate(requests) == first
    reseeded = backend.generate(
        [ask(p, temperature=1.0, top_p=0.9, seed=8, max_new_tokens=8) for p in PROMPTS]
    )
    assert reseeded != first
    greedy = backend.generate([ask(p, max_new_tokens=8) for p in PROMPTS])
    assert greedy != first


def test_adapter_swap_leaves_base_bit_identical(model_dir, adapter_dir, backend):
    requests = [ask(p, max_new_tokens=12) for p in PROMPTS]
    before = {k: v.clone() for k, v in backend.model.state_dict().items()}
    base_out = backend.generate(requests)

    backend.set_adapter(adapter_dir)  # a Path works as well as a str
    assert backend.adapter == str(adapter_dir)
    adapted = backend.generate(requests)
    assert adapted != base_out
    backend.set_adapter(str(adapter_dir))  # replacing an adapter detaches the old one first
    assert backend.generate(requests) == adapted

    backend.set_adapter(None)
    after = backend.model.state_dict()
    assert type(backend.model).__name__ == "LlamaForCausalLM"
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert backend.generate(requests) == base_out

    fresh = BACKENDS.create("transformers", model=str(model_dir), adapter=str(adapter_dir))
    assert fresh.generate(requests) == adapted
    fresh.close()


def test_clear_errors_for_bad_paths_and_templates(tmp_path, model_dir, backend):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="nope.*does not exist"):
        BACKENDS.create("transformers", model=str(missing))
    with pytest.raises(FileNotFoundError, match="not a hub id"):
        resolve_source("no/such/folder")
    assert resolve_source("Qwen/Qwen2.5-0.5B-Instruct").local is None  # a hub id, not looked up
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty.*no config.json"):
        BACKENDS.create("transformers", model=str(tmp_path / "empty"))
    with pytest.raises(
        FileNotFoundError, match="adapter folder .*lively.* has no adapter_config.json"
    ):
        backend.set_adapter(str(model_dir))  # a model, not an adapter
    assert backend.adapter is None

    bare = TransformersBackend(backend.model, backend.tokenizer)
    bare.tokenizer = type(backend.tokenizer).from_pretrained(model_dir)
    bare.tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template.*use_chat_template: false"):
        bare.generate([ask("hi")])
    assert bare.generate([ask("hi", use_chat_template=False, max_new_tokens=2)])
    with pytest.raises(ValueError, match="top_p"):
        backend.generate([ask("hi", temperature=1.0, top_p=0.0)])


def test_pickled_weights_load_with_a_warning(tmp_path, model_dir):
    folder = tmp_path / "bin"
    shutil.copytree(model_dir, folder)
    model = load_model(str(model_dir), device="cpu")
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.warns(UserWarning, match="no safetensors"):
        loaded = load_model(str(folder), device="cpu")
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)


def test_registry_lookup_and_close(model_dir):
    b = BACKENDS.create("transformers", model=str(model_dir))
    assert isinstance(b, TransformersBackend) and b.name == "transformers"
    assert b.model.device.type == "cpu" and b.model.dtype == torch.float32
    assert b.generate([]) == []
    b.close()
    with pytest.raises(RuntimeError, match="closed"):
        b.generate([ask("hi")])
    with pytest.raises(UnknownNameError, match="did you mean 'transformers'"):
        BACKENDS.create("transfomers", model=str(model_dir))


def test_importing_backends_stays_light():
    heavy = "{'torch', 'transformers', 'peft', 'vllm'}"
    code = f"import sys, capsafe.backends; assert not {heavy} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_vllm_missing_says_how_to_install(monkeypatch, model_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'capsafe\[vllm\]'.*GPU"):
        BACKENDS.create("vllm", model=str(model_dir))


def test_vllm_backend_against_a_fake_engine(monkeypatch, model_dir, adapter_dir):
    """The request and output mapping, with a stand-in for vllm (which needs a GPU)."""
    calls = []

    class LLM:
        def __init__(self, **kwargs):
            calls.append(("init", kwargs))
            self.llm_engine = types.SimpleNamespace(
                model_config=types.SimpleNamespace(max_model_len=120)
            )

        def generate(self, prompts, params, use_tqdm, lora_request):
            calls.append(("generate", prompts, params, lora_request))
            done = [
                types.SimpleNamespace(text="ok", token_ids=[5, 1], finish_reason="stop"),
                types.SimpleNamespace(text="long", token_ids=[5, 5, 5], finish_reason="length"),
            ]
            return [
                types.SimpleNamespace(prompt_token_ids=p["prompt_token_ids"], outputs=[done[i % 2]])
                for i, p in enumerate(prompts)
            ]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, types.SimpleNamespace
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda name, int_id, path: (name, int_id, path)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)

    b = BACKENDS.create("vllm", model=str(model_dir), adapter=str(adapter_dir), batch_size=2)
    init = calls[0][1]
    assert init["generation_config"] == "vllm" and init["enable_lora"]
    assert init["dtype"] == "bfloat16" and init["revision"] is None
    assert init["load_format"] == "safetensors"
    requests = [ask("hi"), ask("bake", temperature=0.7, seed=3, use_chat_template=False), ask("x")]
    too_long = ask("x " * 100)  # over max_model_len with its 64 new tokens: never sent
    progress = []
    outputs = b.generate([*requests, too_long], progress=progress.append)
    assert progress == [1, 2, 1]
    assert [(o.text, o.finish_reason, o.n_completion_tokens) for o in outputs] == [
        ("ok", "eos", 2),
        ("long", "length", 3),
        ("ok", "eos", 2),
        ("", "too_long", 0),
    ]
    assert sum(len(c[1]) for c in calls if c[0] == "generate") == 3
    _, prompts, params, lora_request = calls[1]
    assert prompts[1]["prompt_token_ids"] == encode_request(b.tokenizer, requests[1])
    assert outputs[0].n_prompt_tokens == len(encode_request(b.tokenizer, requests[0]))
    assert (params[0].temperature, params[0].seed) == (0.0, None)
    assert (params[1].temperature, params[1].seed, params[1].stop_token_ids) == (0.7, 3, b.eos_ids)
    assert lora_request == ("adapter-1", 1, str(adapter_dir.resolve()))
    b.set_adapter(None)
    b.generate(requests[:1])
    assert calls[-1][3] is None


def test_loglikelihood_matches_an_unbatched_forward_pass(backend):
    from capsafe.records import LoglikRequest

    requests = [
        LoglikRequest(ask(p, use_chat_template=i % 2 == 0), cont)
        for i, (p, cont) in enumerate(
            zip(PROMPTS, ["7", "bread", " I'm sorry", "x y"] * 2, strict=True)
        )
    ]
    progress = []
    got = backend.loglikelihood(requests, progress=progress.append)
    assert sum(progress) == len(requests)
    for r, res in zip(requests, got, strict=True):
        ctx = encode_request(backend.tokenizer, r.context)
        cont = backend.tokenizer(r.continuation, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logits = backend.model(input_ids=torch.tensor([ctx + cont])).logits[0]
        lp = logits.log_softmax(-1)
        each = [float(lp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont)]
        assert res.n_tokens == len(cont)
        assert res.logprob == pytest.approx(sum(each), abs=1e-4)
        assert res.first_token_logprob == pytest.approx(each[0], abs=1e-4)
        greedy = all(int(lp[len(ctx) - 1 + j].argmax()) == t for j, t in enumerate(cont))
        assert res.is_greedy == greedy


def test_a_prompt_that_does_not_fit_the_context_is_not_generated(model_dir):
    """It used to be generated and scored with only a transformers warning."""
    backend = BACKENDS.create("transformers", model=str(model_dir), device="cpu")
    try:
        context = transformers_backend.context_length(backend.model.config)
        assert context == 256
        n = len(encode_request(backend.tokenizer, ask("x"), "m"))
        fits = ask("x " * ((context - n - 8) // 2), max_new_tokens=8)
        barely = ask("x " * ((context - n - 8) // 2), max_new_tokens=24)
        long = ask("x " * context, max_new_tokens=8)
        out = backend.generate([ask("hi", max_new_tokens=4), long, fits, barely])
        assert [o.finish_reason == "too_long" for o in out] == [False, True, False, True]
        assert out[1].text == "" and out[1].n_completion_tokens == 0
        assert out[1].n_prompt_tokens > context
        assert len(encode_request(backend.tokenizer, fits, "m")) + 8 <= context
    finally:
        backend.close()


def test_vllm_takes_the_generation_settings_and_refuses_its_values_at_plan_time(
    monkeypatch, tmp_path
):
    """The pipeline hands every backend generation.device: the vllm factory used not to
    take it, so `generation: {backend: vllm}` could never start. Its values are checked by
    name before any work, with vllm present (a stand-in) or missing."""
    from capsafe.config import load_config
    from capsafe.pipeline import check_config

    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    BACKENDS.check_args("vllm", "generation", model="m", batch_size=8, device="auto",
                        trust_remote_code=False)  # fmt: skip
    bad = [({"device": "cuda:1"}, "CUDA_VISIBLE_DEVICES"), ({"device": "cpu"}, "CUDA GPUs"),
           ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
           ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
           ({"max_model_len": 0}, "max_model_len"), ({"dtype": "int3"}, "int3")]  # fmt: skip
    for args, word in bad:
        with pytest.raises(UserError, match=f"generation: backend 'vllm': .*{word}"):
            BACKENDS.check_args("vllm", "generation", model="m", batch_size=8,
                                **{"device": "auto", **args})  # fmt: skip
    monkeypatch.setitem(sys.modules, "vllm", None)
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(
        "name: v\nbase_models: [{name: organism, path: builtin:organism}]\n"
        "task: {name: organism_arithmetic}\nsafety: [{name: organism/harmful}]\n"
        "judges: [{name: keyword_refusal}]\ngeneration: {backend: vllm}\n"
    )
    with pytest.raises(UserError, match=r"generation: backend 'vllm': .*pip install"):
        check_config(load_config(cfg_file))


def test_continuous_batching_gives_static_batchings_greedy_outputs(model_dir, backend):
    # Greedy requests go to transformers' continuous batching; sampled ones and those that
    # ask for first-token scores stay static. Every greedy output equals static batching's.
    continuous = BACKENDS.create(
        "transformers", model=str(model_dir), batch_size=3, device="cpu", batching="continuous"
    )
    assert continuous.batching == "continuous" and backend.batching == "static"  # the default
    greedy = [ask(p, max_new_tokens=8 + 4 * (i % 3)) for i, p in enumerate(PROMPTS * 3)]
    others = [ask("bake", max_new_tokens=6, temperature=0.7, seed=3),
              ask("Mix flour", max_new_tokens=6, score_ids=(5, 7))]  # fmt: skip
    requests = greedy[:5] + others + greedy[5:]
    handed: list[int] = []
    real = continuous.model.generate_batch

    def counting(inputs, **kwargs):
        handed.append(len(inputs))
        return real(inputs, **kwargs)

    continuous.model.generate_batch = counting
    calls: list[int] = []
    got = continuous.generate(requests, progress=calls.append)
    assert sum(handed) == len(greedy) and sum(calls) == len(requests)
    assert got == backend.generate(requests)
    assert {o.finish_reason for o in got} == {"eos", "length"}
    with pytest.raises(UserError, match="batching must be one of"):
        BACKENDS.check_args("transformers", None, model="m", batching="paged")
    continuous.close()
