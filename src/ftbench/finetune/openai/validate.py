"""The format checks OpenAI documents for chat fine-tuning files, with counts and line numbers.

The checks and their names follow the OpenAI Cookbook notebook "Data preparation and analysis for chat model
fine-tuning" (``data_type``, ``missing_messages_list``, ``message_missing_key``, ``message_unrecognized_key``,
``unrecognized_role``, ``missing_content``, ``example_missing_assistant_message``), plus lines that are not
JSON, unknown top-level keys, OpenAI's 10-example minimum, and examples over the model's token limit (which
OpenAI truncates: a warning, not an error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ftbench._jsonl import JsonlLine
from ftbench.finetune.openai.tokens import TokenCounter

MIN_EXAMPLES = 10
TOP_LEVEL_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "tool_calls", "tool_call_id", "weight"})
ROLES = frozenset({"system", "user", "assistant", "function", "tool"})

#: Every problem code and what it means, as printed by ``validate``.
PROBLEMS: dict[str, str] = {
    "invalid_json": "line is not valid JSON",
    "data_type": "line is not a JSON object",
    "unknown_key": f"top-level key other than {', '.join(sorted(TOP_LEVEL_KEYS))}",
    "missing_messages_list": "no non-empty 'messages' list",
    "message_missing_key": "a message lacks 'role' or 'content'",
    "message_unrecognized_key": "a message has a key OpenAI does not accept",
    "unrecognized_role": f"a role other than {', '.join(sorted(ROLES))}",
    "missing_content": "a message's content is missing, empty or not text",
    "invalid_weight": "a message's weight is not 0 or 1",
    "example_missing_assistant_message": "no assistant message to learn from",
    "too_few_examples": f"OpenAI requires at least {MIN_EXAMPLES} examples",
    "too_many_tokens": "example longer than the model's limit; OpenAI truncates it (warning)",
}
WARNINGS = frozenset({"too_many_tokens"})


@dataclass
class ValidationReport:
    """Problems found in a file: code -> 1-based line numbers (line 0 = the file as a whole)."""

    n_lines: int
    problems: dict[str, list[int]] = field(default_factory=dict)

    def add(self, code: str, line: int) -> None:
        lines = self.problems.setdefault(code, [])
        if not lines or lines[-1] != line:
            lines.append(line)

    @property
    def errors(self) -> dict[str, list[int]]:
        return {code: lines for code, lines in self.problems.items() if code not in WARNINGS}

    @property
    def warnings(self) -> dict[str, list[int]]:
        return {code: lines for code, lines in self.problems.items() if code in WARNINGS}

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_lines(lines: Sequence[JsonlLine], counter: TokenCounter | None = None,
                   token_limit: int | None = None) -> ValidationReport:
    """Check every line; token lengths are checked when a counter and a limit are given."""
    report = ValidationReport(n_lines=len(lines))
    for line in lines:
        _check_line(line, report)
        if counter is not None and token_limit is not None and _too_long(line.value, counter, token_limit):
            report.add("too_many_tokens", line.number)
    if len(lines) < MIN_EXAMPLES:
        report.add("too_few_examples", 0)
    return report


def _too_long(value: Any, counter: TokenCounter, limit: int) -> bool:
    messages = value.get("messages") if isinstance(value, dict) else None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return False
    return counter.count_messages(messages) > limit


def _check_line(line: JsonlLine, report: ValidationReport) -> None:
    if line.error is not None:
        report.add("invalid_json", line.number)
        return
    if not isinstance(line.value, dict):
        report.add("data_type", line.number)
        return
    if set(line.value) - TOP_LEVEL_KEYS:
        report.add("unknown_key", line.number)
    messages = line.value.get("messages")
    if not isinstance(messages, list) or not messages:
        report.add("missing_messages_list", line.number)
        return
    for message in messages:
        _check_message(message, line.number, report)
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        report.add("example_missing_assistant_message", line.number)


def _check_message(message: Any, number: int, report: ValidationReport) -> None:
    if not isinstance(message, dict):
        report.add("data_type", number)
        return
    if "role" not in message or "content" not in message:
        report.add("message_missing_key", number)
    if set(message) - MESSAGE_KEYS:
        report.add("message_unrecognized_key", number)
    if message.get("role") not in ROLES:
        report.add("unrecognized_role", number)
    content = message.get("content")
    calls_a_function = bool(message.get("function_call") or message.get("tool_calls"))
    if not calls_a_function and (not isinstance(content, str) or not content):
        report.add("missing_content", number)
    if "weight" in message and message["weight"] not in (0, 1):
        report.add("invalid_weight", number)


def format_report(report: ValidationReport, path: str, max_lines: int = 10) -> list[str]:
    """Human-readable lines: one per problem code with its count and the first line numbers."""
    verdict = "OK" if report.ok else "INVALID"
    out = [f"{path}: {report.n_lines} examples, {verdict}"]
    for code, lines in report.problems.items():
        kind = "warning" if code in WARNINGS else "error"
        shown = ", ".join(str(n) for n in lines[:max_lines] if n > 0) + (" …" if len(lines) > max_lines else "")
        where = f" (lines {shown})" if shown else ""
        out.append(f"  {kind}: {code}: {len(lines) if lines != [0] else 1} — {PROBLEMS[code]}{where}")
    return out
