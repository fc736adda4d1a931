"""SafeLoRA: project LoRA updates onto the alignment subspace of their layer (post hoc).

Hsu et al. 2024, "Safe LoRA: the Silver Lining of Reducing Safety Risks when Finetuning Large
Language Models" (arXiv:2405.16833); the formulas follow the reference implementation
(IBM/SafeLoRA, and peft.utils.safelora.project_weights):

    V = W_aligned - W_unaligned                 (the layer's weight, out x in)
    C = V V^T / ||V||_F                          (out x out)
    cos = cos(vec(C B A), vec(B A))              (B: lora_B, out x r; A: lora_A, r x in)
    project the layer (B <- C B) when cos <= threshold,
    or, with select "number", the num_layers layers of lowest cos.

Layers are paired by module name (the reference pairs them by position in two sorted lists).

    projector = SafeLoraProjector(aligned_dir, unaligned_dir, spec)
    layers = projector.project_adapter(epoch_dir, out_dir)   # [LayerProjection, ...]
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from capsafe.finetune.recipes import SafeLoraSpec

REPORT_FILE = "capsafe_safelora.json"
_WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class LayerProjection:
    module: str  # e.g. "model.layers.0.self_attn.q_proj"
    cosine: float
    projected: bool


def alignment_matrix(aligned: torch.Tensor, unaligned: torch.Tensor) -> torch.Tensor:
    """C = V V^T / ||V||_F for V = aligned - unaligned (float64)."""
    v = aligned.double() - unaligned.double()
    norm = torch.linalg.norm(v)
    if norm == 0:
        raise ValueError("the aligned and unaligned weights of a layer are equal: no direction")
    return v @ v.T / norm


def layer_cosine(c: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of the projected update C B A with the update B A."""
    update = b.double() @ a.double()
    projected = (c @ b.double()) @ a.double()
    return float(torch.nn.functional.cosine_similarity(projected.reshape(1, -1),
                                                       update.reshape(1, -1)))  # fmt: skip


def choose_layers(cosines: dict[str, float], spec: SafeLoraSpec) -> set[str]:
    """The modules to project: cos <= threshold, or the num_layers of lowest cos."""
    if spec.select == "threshold":
        return {m for m, cos in cosines.items() if cos <= spec.threshold}
    ranked = sorted(cosines, key=lambda m: (cosines[m], m))
    return set(ranked[: spec.num_layers])


def project(
    lora: dict[str, torch.Tensor],
    aligned: Mapping[str, torch.Tensor],
    unaligned: Mapping[str, torch.Tensor],
    spec: SafeLoraSpec,
) -> tuple[dict[str, torch.Tensor], list[LayerProjection]]:
    """The adapter tensors with the chosen layers' B projected, and what was done per layer.

    lora: PEFT's saved names ("base_model.model.<module>.lora_A.weight"); aligned/unaligned:
    the base models' state dicts ("<module>.weight").
    """
    modules = sorted(
        k.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
        for k in lora
        if k.endswith(".lora_A.weight")
    )
    if not modules:
        raise ValueError("the adapter holds no LoRA layers (no *.lora_A.weight tensors)")
    mats, cosines = {}, {}
    for m in modules:
        weight = f"{m}.weight"
        if weight not in aligned or weight not in unaligned:
            raise ValueError(f"SafeLoRA: {weight} is missing from the aligned or unaligned model")
        if aligned[weight].shape != unaligned[weight].shape:
            raise ValueError(f"SafeLoRA: {weight} has different shapes in the two models")
        cached = getattr(aligned, "matrix", None)
        mats[m] = cached(weight) if cached else alignment_matrix(aligned[weight], unaligned[weight])
        a, b = lora[_lora_key(m, "A")], lora[_lora_key(m, "B")]
        cosines[m] = layer_cosine(mats[m], a, b)
    chosen = choose_layers(cosines, spec)
    out = dict(lora)
    for m in chosen:
        b = lora[_lora_key(m, "B")]
        out[_lora_key(m, "B")] = (mats[m] @ b.double()).to(b.dtype).contiguous()
    return out, [LayerProjection(m, cosines[m], m in chosen) for m in modules]


def _lora_key(module: str, which: str) -> str:
    return f"base_model.model.{module}.lora_{which}.weight"


class ModelWeights:
    """The tensors of a model folder's *.safetensors shards, read one at a time (an 8B model
    is never loaded whole for SafeLoRA)."""

    def __init__(self, folder: Path) -> None:
        from safetensors import safe_open

        files = sorted(Path(folder).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{folder}: no *.safetensors weights for SafeLoRA to read")
        self._where: dict[str, Path] = {}
        for f in files:
            with safe_open(str(f), framework="pt") as handle:
                self._where |= {name: f for name in handle.keys()}  # noqa: SIM118
        self.folder = Path(folder)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __getitem__(self, name: str) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(self._where[name]), framework="pt") as handle:
            return handle.get_tensor(name)


class SafeLoraProjector:
    """Projects a run's epoch adapters; each layer's C is computed once and reused."""

    def __init__(self, aligned_dir: Path, unaligned_dir: Path, spec: SafeLoraSpec) -> None:
        self.aligned, self.unaligned = ModelWeights(aligned_dir), ModelWeights(unaligned_dir)
        self.spec = spec
        self._mats: dict[str, torch.Tensor] = {}

    def project_adapter(self, adapter_dir: Path, out_dir: Path) -> list[LayerProjection]:
        """Write the projected adapter (PEFT format) to out_dir (complete or absent), with a
        report of every layer in capsafe_safelora.json."""
        from safetensors.torch import load_file, save_file

        lora = load_file(str(Path(adapter_dir) / _WEIGHTS))
        projected, layers = project(lora, _Cached(self), self.unaligned, self.spec)
        tmp = out_dir.with_name(f".tmp-{out_dir.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copy2(Path(adapter_dir) / "adapter_config.json", tmp / "adapter_config.json")
        save_file(projected, str(tmp / _WEIGHTS), metadata={"format": "pt"})
        report = {
            "method": "safelora (Hsu et al. 2024)",
            "spec": dict(self.spec.__dict__),
            "layers": [dict(layer.__dict__) for layer in layers],
            "projected": sum(layer.projected for layer in layers),
        }
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
        return layers


class _Cached:
    """The aligned weights as `project` reads them, with C memoised per module."""

    def __init__(self, projector: SafeLoraProjector) -> None:
        self.p = projector

    def __contains__(self, name: object) -> bool:
        return name in self.p.aligned

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.p.aligned[name]

    def matrix(self, name: str) -> torch.Tensor:
        if name not in self.p._mats:
            self.p._mats[name] = alignment_matrix(self.p.aligned[name], self.p.unaligned[name])
        return self.p._mats[name]
