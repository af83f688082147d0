"""The only place prompt text lives: completion and chat forms of both tasks, character-exact to the study.

Training (LoRA completion prompts, OpenAI chat JSONL) and evaluation (the lm-eval tasks) all call these
functions, so what a model is trained on is byte-identical to what it is evaluated on.
"""

from __future__ import annotations

from typing import Literal, TypedDict

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    role: Role
    content: str


SQL_INSTRUCTION = (
    "You are a powerful text-to-SQL model. Your job is to answer questions about a database. You are given a "
    "question and context regarding one or more tables.\n\nYou must output the SQL query that answers the question."
)

VIGGO_FUNCTIONS: tuple[str, ...] = (
    "inform", "request", "give_opinion", "confirm", "verify_attribute", "suggest",
    "request_explanation", "recommend", "request_attribute",
)
VIGGO_ATTRIBUTES: tuple[str, ...] = (
    "name", "exp_release_date", "release_year", "developer", "esrb", "rating", "genres",
    "player_perspective", "has_multiplayer", "platforms", "available_on_steam", "has_linux_release",
    "has_mac_release", "specifier",
)

# The study wrote these lists as Python list reprs inside the prompt; list(...) reproduces that text.
VIGGO_INSTRUCTION_LINES: tuple[str, ...] = (
    "Given a target sentence construct the underlying meaning representation of the input sentence as a "
    "single function with attributes and attribute values.",
    "This function should describe the target string accurately and the function must be one of the "
    f"following {list(VIGGO_FUNCTIONS)}.",
    f"The attributes must be one of the following: {list(VIGGO_ATTRIBUTES)}",
)


def sql_completion_prompt(question: str, context: str) -> str:
    """The LoRA training/evaluation prompt; the model continues with the SQL query."""
    return f"{SQL_INSTRUCTION}\n\n### Input:\n{question}\n\n### Context:\n{context}\n\n### Response:\n"


def sql_system_message(context: str) -> str:
    """System message of the OpenAI chat form: the instruction, then the per-example table context."""
    return f"{SQL_INSTRUCTION}\n\n### Context:\n{context}"


def sql_chat_messages(question: str, context: str, answer: str | None = None) -> list[Message]:
    """Chat form (OpenAI fine-tuning); the assistant turn is included when ``answer`` is given."""
    return _chat(sql_system_message(context), question, answer)


def viggo_completion_prompt(target: str) -> str:
    """The LoRA training/evaluation prompt; the model continues with the meaning representation."""
    instructions = "\n".join(VIGGO_INSTRUCTION_LINES)
    return f"{instructions}\n\n### Target sentence:\n{target}\n\n### Meaning representation:\n"


def viggo_system_message() -> str:
    """System message of the OpenAI chat form: the instruction lines joined with spaces."""
    return " ".join(VIGGO_INSTRUCTION_LINES)


def viggo_chat_messages(target: str, meaning_representation: str | None = None) -> list[Message]:
    """Chat form (OpenAI fine-tuning); the assistant turn is included when the MR is given."""
    return _chat(viggo_system_message(), target, meaning_representation)


def completion_training_text(prompt: str, completion: str) -> str:
    """Full training text of the completion form: prompt, completion, and the newline the study appended."""
    return f"{prompt}{completion}\n"


def _chat(system: str, user: str, assistant: str | None) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return messages
