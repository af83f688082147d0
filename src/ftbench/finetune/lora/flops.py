"""Model FLOPs of LoRA training, model FLOPs utilisation (MFU) and the model shapes the benchmark builds.

LoRA freezes the base weights, so a training token costs the forward pass (2 FLOPs per weight) plus the gradient
with respect to the activations (2 more), but no weight gradient: 4 FLOPs per matmul weight, against 6 for full
fine-tuning. Causal attention adds 2·L·d·s per token forward (QKᵀ and AV over s/2 earlier positions on average) and
twice that backward. Only real tokens count: padding and gradient-checkpointing recomputation are work the
hardware does that the model does not need, so they lower MFU rather than raise it. LoRA's own FLOPs (r ≪ d)
are left out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LlamaShape:
    """A Llama-architecture model size (CodeLlama's own configs)."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int = 32016

    @property
    def matmul_params(self) -> int:
        """Weights every token multiplies through: attention and MLP projections of each layer, and the LM head."""
        head_dim = self.hidden_size // self.num_heads
        attention = self.hidden_size * head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        mlp = 3 * self.hidden_size * self.intermediate_size
        return self.num_layers * (attention + mlp) + self.hidden_size * self.vocab_size


SHAPES = {
    "7b": LlamaShape("CodeLlama-7B", 4096, 11008, 32, 32, 32),
    "34b": LlamaShape("CodeLlama-34B", 8192, 22016, 48, 64, 8),
    "tiny": LlamaShape("tiny", 64, 128, 2, 4, 2, vocab_size=1024),
}

#: Dense (non-sparse) bf16/fp16 tensor-core peaks from the vendors' datasheets, in TFLOP/s.
PEAK_TFLOPS = {"H200": 989.5, "H100": 989.5, "A100": 312.0, "A40": 149.7, "L40S": 362.1, "A10G": 125.0}


def lora_flops_per_token(shape: LlamaShape, mean_sequence_length: float) -> float:
    """Model FLOPs to train on one real token of a sequence of ``mean_sequence_length`` tokens."""
    attention_forward = 2 * shape.num_layers * shape.hidden_size * mean_sequence_length
    return 4 * shape.matmul_params + 3 * attention_forward


def peak_tflops(device_name: str) -> float | None:
    """The datasheet peak of a GPU named like ``NVIDIA H200``; None when unknown (CPUs)."""
    for key, value in PEAK_TFLOPS.items():
        if key.lower() in device_name.lower():
            return value
    return None


def mfu(tokens_per_second: float, flops_per_token: float, peak: float | None) -> float | None:
    """Achieved model FLOP/s over the peak; None without a known peak."""
    if not peak:
        return None
    return tokens_per_second * flops_per_token / (peak * 1e12)
