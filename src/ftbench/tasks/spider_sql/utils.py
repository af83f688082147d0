"""Thin hooks for the spider_sql tasks; the logic lives in ftbench.lmeval.hooks."""

from ftbench.lmeval.hooks import (
    extract_answers,
)
from ftbench.lmeval.hooks import (
    spider_sql_chat_docs as load_chat_docs,
)
from ftbench.lmeval.hooks import (
    spider_sql_docs as load_docs,
)
from ftbench.lmeval.hooks import (
    spider_sql_prompt as doc_to_text,
)
from ftbench.lmeval.hooks import (
    spider_sql_results as process_results,
)

__all__ = ["doc_to_text", "extract_answers", "load_chat_docs", "load_docs", "process_results"]
