"""The prompt texts are pinned character for character: training and evaluation must see the study's."""

from __future__ import annotations

from ftbench import prompts

SQL_COMPLETION = (
    "You are a powerful text-to-SQL model. Your job is to answer questions about a database. You are given a "
    "question and context regarding one or more tables.\n\nYou must output the SQL query that answers the "
    "question.\n\n### Input:\nHow many singers do we have?\n\n### Context:\nCREATE TABLE singer (Id VARCHAR)"
    "\n\n### Response:\n"
)
SQL_SYSTEM = (
    "You are a powerful text-to-SQL model. Your job is to answer questions about a database. You are given a "
    "question and context regarding one or more tables.\n\nYou must output the SQL query that answers the "
    "question.\n\n### Context:\nCREATE TABLE singer (Id VARCHAR)"
)
VIGGO_LINE_1 = ("Given a target sentence construct the underlying meaning representation of the input sentence as "
                "a single function with attributes and attribute values.")
VIGGO_LINE_2 = ("This function should describe the target string accurately and the function must be one of the "
                "following ['inform', 'request', 'give_opinion', 'confirm', 'verify_attribute', 'suggest', "
                "'request_explanation', 'recommend', 'request_attribute'].")
VIGGO_LINE_3 = ("The attributes must be one of the following: ['name', 'exp_release_date', 'release_year', "
                "'developer', 'esrb', 'rating', 'genres', 'player_perspective', 'has_multiplayer', 'platforms', "
                "'available_on_steam', 'has_linux_release', 'has_mac_release', 'specifier']")
SENTENCE = "I remember you saying you found Little Big Adventure to be average."
MR = "verify_attribute(name[Little Big Adventure], rating[average])"


def test_sql_completion_prompt_is_the_studys() -> None:
    assert prompts.sql_completion_prompt("How many singers do we have?", "CREATE TABLE singer (Id VARCHAR)") \
        == SQL_COMPLETION


def test_sql_chat_messages_are_the_studys() -> None:
    messages = prompts.sql_chat_messages("How many singers do we have?", "CREATE TABLE singer (Id VARCHAR)",
                                         "SELECT count(*) FROM singer")
    assert messages == [
        {"role": "system", "content": SQL_SYSTEM},
        {"role": "user", "content": "How many singers do we have?"},
        {"role": "assistant", "content": "SELECT count(*) FROM singer"},
    ]


def test_viggo_completion_prompt_is_the_studys() -> None:
    expected = (f"{VIGGO_LINE_1}\n{VIGGO_LINE_2}\n{VIGGO_LINE_3}\n\n### Target sentence:\n{SENTENCE}"
                "\n\n### Meaning representation:\n")
    assert prompts.viggo_completion_prompt(SENTENCE) == expected


def test_viggo_chat_messages_join_the_instructions_on_one_line() -> None:
    messages = prompts.viggo_chat_messages(SENTENCE, MR)
    assert messages == [
        {"role": "system", "content": f"{VIGGO_LINE_1} {VIGGO_LINE_2} {VIGGO_LINE_3}"},
        {"role": "user", "content": SENTENCE},
        {"role": "assistant", "content": MR},
    ]


def test_chat_messages_without_an_answer_stop_at_the_user_turn() -> None:
    assert [m["role"] for m in prompts.viggo_chat_messages(SENTENCE)] == ["system", "user"]
    assert [m["role"] for m in prompts.sql_chat_messages("q", "c")] == ["system", "user"]


def test_training_text_is_prompt_then_completion_then_newline() -> None:
    prompt = prompts.viggo_completion_prompt(SENTENCE)
    assert prompts.completion_training_text(prompt, MR) == prompt + MR + "\n"
