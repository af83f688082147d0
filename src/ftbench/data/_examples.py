"""Typed examples of both tasks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SqlExample:
    """One Spider ∩ sql-create-context row: a question, its ``CREATE TABLE`` context and gold SQL."""

    id: str
    question: str
    context: str
    answer: str
    db_id: str


@dataclass(frozen=True)
class ViggoExample:
    """One ViGGO row: a sentence (``target``) and its meaning representation."""

    gem_id: str
    meaning_representation: str
    target: str
