"""Text-level SQL checks that need no database: the study's exact match, and "parses as one statement"."""

from __future__ import annotations

import sqlite3

# Errors sqlite raises only after the whole statement parsed: name resolution, not grammar.
_RESOLUTION_ERRORS = ("no such table", "no such column", "no such function", "ambiguous column",
                      "no such collation", "no such module", "unknown database", "no tables specified")


def exact_match(gold: str, prediction: str) -> bool:
    """The study's character-level exact match, after trimming surrounding whitespace."""
    return gold.strip() == prediction.strip()


def is_valid_sql(sql: str) -> bool:
    """True when ``sql`` parses as exactly one SQLite statement (tables and columns need not exist).

    ``EXPLAIN`` compiles without running anything, on an empty in-memory database: a grammar error
    means invalid; a name-resolution error means the statement parsed.
    """
    statement = sql.strip()
    if not statement or "\x00" in statement:
        return False
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute(f"EXPLAIN {statement}")
    except sqlite3.ProgrammingError:  # more than one statement
        return False
    except sqlite3.Error as err:
        return any(marker in str(err) for marker in _RESOLUTION_ERRORS)
    finally:
        connection.close()
    return True
