"""Thin hooks for the viggo tasks; the logic lives in ftbench.lmeval.hooks."""

from ftbench.lmeval.hooks import (
    extract_answers,
    slot_f1,
)
from ftbench.lmeval.hooks import (
    viggo_chat_docs as load_chat_docs,
)
from ftbench.lmeval.hooks import (
    viggo_docs as load_docs,
)
from ftbench.lmeval.hooks import (
    viggo_prompt as doc_to_text,
)
from ftbench.lmeval.hooks import (
    viggo_results as process_results,
)

__all__ = ["doc_to_text", "extract_answers", "load_chat_docs", "load_docs", "process_results", "slot_f1"]
