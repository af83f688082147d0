"""Readers for the mirror files and the hub, each turning raw rows into typed examples."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal, overload

from ftbench._paths import DATA_DIR_VARIABLE, env_path, where
from ftbench.data._examples import SqlExample, ViggoExample
from ftbench.errors import DataError, MissingDependency

SPIDER_SQL_REPO = "samlhuillier/sql-create-context-spider-intersect"
VIGGO_REPO = "GEM/viggo"
SpiderSplit = Literal["train", "val"]
ViggoSplit = Literal["train", "validation", "test"]
SPIDER_SQL_SPLITS: tuple[str, ...] = ("train", "val")
VIGGO_SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: The splits the study evaluated on.
EVAL_SPLITS = {"spider_sql": "val", "viggo": "test"}

_SQL_FIELDS = ("question", "context", "answer", "db_id")
_VIGGO_FIELDS = ("gem_id", "meaning_representation", "target")


@overload
def data_dir() -> Path | None: ...


@overload
def data_dir(fallback: Path) -> Path: ...


def data_dir(fallback: Path | None = None) -> Path | None:
    """The local mirror named by ``FTBENCH_DATA_DIR`` (absolute: a relative one is taken from the working
    directory), else ``fallback`` (None: use the hub; tests and benchmarks pass the mirror beside a checkout)."""
    return env_path(DATA_DIR_VARIABLE) or fallback


def spider_sql_filename(split: str) -> str:
    _check_split(split, SPIDER_SQL_SPLITS, "spider_sql")
    return f"spider_create_context_{split}.json"


def load_spider_sql(split: str) -> list[SqlExample]:
    """Rows of the Spider ∩ sql-create-context ``split`` (``train`` or ``val``)."""
    name = spider_sql_filename(split)
    mirror = data_dir()
    path = mirror / "spider_sql" / name if mirror else _hub_file(SPIDER_SQL_REPO, name)
    return read_spider_sql_file(path, split)


def load_viggo(split: str) -> list[ViggoExample]:
    """Rows of the ViGGO ``split`` (``train``, ``validation`` or ``test``)."""
    _check_split(split, VIGGO_SPLITS, "viggo")
    mirror = data_dir()
    if mirror:
        return read_viggo_file(mirror / "viggo" / f"{split}.csv")
    return [_viggo_example(row, f"{VIGGO_REPO}[{split}]", i) for i, row in enumerate(_hub_rows(VIGGO_REPO, split))]


def read_spider_sql_file(path: Path, split: str) -> list[SqlExample]:
    """Parse a ``spider_create_context_*.json`` file: a JSON list of objects with the four fields."""
    try:
        rows = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); expected a list of "
                        f"objects with fields {', '.join(_SQL_FIELDS)}") from err
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of objects, got {type(rows).__name__}")
    return [_sql_example(row, path, i, split) for i, row in enumerate(rows)]


def read_viggo_file(path: Path) -> list[ViggoExample]:
    """Parse a ViGGO CSV with header ``gem_id,meaning_representation,target``."""
    reader = csv.DictReader(_read_text(path).splitlines())
    missing = [f for f in _VIGGO_FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path}: CSV header lacks column(s) {', '.join(missing)}; "
                        f"expected {', '.join(_VIGGO_FIELDS)}")
    return [_viggo_example(row, str(path), i) for i, row in enumerate(reader)]


def _sql_example(row: Any, source: Path, index: int, split: str) -> SqlExample:
    fields = _string_fields(row, _SQL_FIELDS, f"{source}: row {index}")
    return SqlExample(id=f"{split}-{index}", **fields)


def _viggo_example(row: Any, source: str, index: int) -> ViggoExample:
    return ViggoExample(**_string_fields(row, _VIGGO_FIELDS, f"{source}: row {index}"))


def _string_fields(row: Any, names: tuple[str, ...], where: str) -> dict[str, str]:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object with fields {', '.join(names)}")
    bad = [name for name in names if not isinstance(row.get(name), str)]
    if bad:
        raise DataError(f"{where}: field(s) {', '.join(bad)} missing or not text; expected {', '.join(names)}")
    return {name: row[name] for name in names}


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        mirror = data_dir()
        in_mirror = mirror is not None and path.absolute().is_relative_to(mirror)
        hint = f" ({DATA_DIR_VARIABLE} points at a mirror without it)" if in_mirror else ""
        raise DataError(f"{where(path)}: file not found{hint}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read as UTF-8 text ({err})") from err


def _check_split(split: str, allowed: tuple[str, ...], task: str) -> None:
    if split not in allowed:
        raise DataError(f"{task}: unknown split {split!r}; choose one of {', '.join(allowed)}")


def _hub_file(repo: str, filename: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as err:  # pragma: no cover - huggingface_hub comes with lm-eval/datasets
        raise MissingDependency("huggingface_hub is needed to download data; or set FTBENCH_DATA_DIR") from err
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, repo_type="dataset"))
    except Exception as err:  # the hub client raises many types; all mean "could not fetch"
        raise DataError(f"could not download {filename} from the hub dataset {repo} ({err}); "
                        "set FTBENCH_DATA_DIR to a local mirror to work offline") from err


def _hub_rows(repo: str, split: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - datasets comes with lm-eval
        raise MissingDependency("the datasets package is needed to download data; or set FTBENCH_DATA_DIR") from err
    try:
        return list(datasets.load_dataset(repo, split=split))
    except Exception as err:  # network, auth and format errors all mean "could not fetch"
        raise DataError(f"could not load split {split!r} of the hub dataset {repo} ({err}); "
                        "set FTBENCH_DATA_DIR to a local mirror to work offline") from err
