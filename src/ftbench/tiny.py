"""A tiny Llama-architecture model and a locally trained tokenizer, built in seconds with no hub access.

Used by the tests (random weights: every code path the real CodeLlama runs take — lm-eval ``hf``, chat
templates, LoRA, serving — on a laptop CPU; its answers are noise) and by ``ftbench demo``, which trains the
larger :data:`DEMO_SHAPE` from scratch (:mod:`ftbench.finetune.scratch`). For the demo, each task's fixed
instruction is one token of the vocabulary (:data:`WHOLE_TOKENS`): the prompt's bytes do not change, but the
model sees ~50 tokens per ViGGO prompt instead of ~200.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftbench import prompts

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")


@dataclass(frozen=True)
class TinyShape:
    """Model size; the defaults make a ~0.2M-parameter model that generates fast on one core."""

    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    max_positions: int = 2048


#: The demo's model: d=128, 2 layers, a 2,048-token vocabulary; 0.91M parameters.
DEMO_SHAPE = TinyShape(vocab_size=2048, hidden_size=128, intermediate_size=336, num_layers=2, num_heads=4,
                       num_kv_heads=4)
#: The fixed instructions of the completion prompts, each held as a single token by the demo's tokenizer.
WHOLE_TOKENS: tuple[str, ...] = (prompts.SQL_INSTRUCTION, "\n".join(prompts.VIGGO_INSTRUCTION_LINES))


def build_tiny_model(out_dir: Path, texts: Iterable[str], shape: TinyShape | None = None, seed: int = 0,
                     whole_tokens: tuple[str, ...] = ()) -> Path:
    """Train a byte-level BPE tokenizer on ``texts`` (each of ``whole_tokens`` added as one token), build a
    random Llama model, save both to ``out_dir``."""
    shape = shape or TinyShape()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(texts, shape.vocab_size, whole_tokens)
    tokenizer.save_pretrained(out_dir)
    model = _random_llama(shape, tokenizer, seed)
    model.save_pretrained(out_dir)
    return out_dir


def _train_tokenizer(texts: Iterable[str], vocab_size: int, whole_tokens: tuple[str, ...] = ()) -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(_without(texts, whole_tokens), trainer=trainer)
    # Matched in the raw text before the byte-level split, so the prompt's bytes (and its decoding) are unchanged.
    core.add_tokens([AddedToken(text, normalized=False, special=False) for text in whole_tokens])
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _without(texts: Iterable[str], whole_tokens: tuple[str, ...]) -> Iterable[str]:
    """The texts with the whole-token strings cut out: BPE merges are spent on the rest."""
    for text in texts:
        for whole in whole_tokens:
            text = text.replace(whole, "")
        yield text


def _random_llama(shape: TinyShape, tokenizer: Any, seed: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers, num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads, max_position_embeddings=shape.max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def corpus_from_data(limit: int | None = 400) -> list[str]:
    """Training text for the tokenizer: prompts and answers of both tasks, as the model will see them."""
    from ftbench.data import load_spider_sql, load_viggo

    sql = [prompts.completion_training_text(prompts.sql_completion_prompt(e.question, e.context), e.answer)
           for e in load_spider_sql("train")[:limit]]
    viggo = [prompts.completion_training_text(prompts.viggo_completion_prompt(e.target), e.meaning_representation)
             for e in load_viggo("train")[:limit]]
    return sql + viggo
