"""Loading the datasets from the mirror, and the errors a broken mirror gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.data import _load as loader
from ftbench.data import data_dir, load_spider_sql, load_viggo, read_spider_sql_file, read_viggo_file
from ftbench.errors import DataError


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise AssertionError("the hub was contacted although FTBENCH_DATA_DIR is set")

    monkeypatch.setattr(loader, "_hub_file", refuse)
    monkeypatch.setattr(loader, "_hub_rows", refuse)


@pytest.mark.parametrize(("split", "rows"), [("train", 3961), ("val", 568)])
def test_spider_sql_splits_load_from_the_mirror(data_env: Path, no_network: None, split: str, rows: int) -> None:
    examples = load_spider_sql(split)
    assert len(examples) == rows
    assert examples[0].id == f"{split}-0"
    assert all(e.context.startswith("CREATE TABLE") for e in examples)


def test_first_val_row_is_the_studys(data_env: Path) -> None:
    first = load_spider_sql("val")[0]
    assert (first.question, first.answer, first.db_id) == (
        "How many singers do we have?", "SELECT count(*) FROM singer", "concert_singer")


@pytest.mark.parametrize(("split", "rows"), [("train", 5103), ("validation", 714), ("test", 1083)])
def test_viggo_splits_load_from_the_mirror(data_env: Path, no_network: None, split: str, rows: int) -> None:
    examples = load_viggo(split)
    assert len(examples) == rows
    assert examples[0].gem_id == f"viggo-{split}-0"


def test_missing_mirror_file_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTBENCH_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"spider_sql/spider_create_context_val\.json: file not found"):
        load_spider_sql("val")
    with pytest.raises(DataError, match=r"viggo/test\.csv: file not found"):
        load_viggo("test")


def test_unknown_split_is_refused_with_the_choices() -> None:
    with pytest.raises(DataError, match="unknown split 'dev'; choose one of train, val"):
        load_spider_sql("dev")
    with pytest.raises(DataError, match="choose one of train, validation, test"):
        load_viggo("val")


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[\n{"question": "q",\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json: not valid JSON .* line 3"):
        read_spider_sql_file(path, "val")


def test_row_missing_a_field_names_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"question": "q", "context": "c", "answer": "a", "db_id": "d"},
                                {"question": "q", "context": "c", "db_id": "d"}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"rows\.json: row 1: field\(s\) answer missing"):
        read_spider_sql_file(path, "val")


def test_json_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.json"
    path.write_text('{"question": "q"}', encoding="utf-8")
    with pytest.raises(DataError, match="expected a JSON list of objects, got dict"):
        read_spider_sql_file(path, "val")


def test_viggo_csv_without_the_expected_columns(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("id,mr,sentence\n1,inform(name[X]),X\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.csv: CSV header lacks column\(s\) gem_id, meaning_representation"):
        read_viggo_file(path)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_bytes(b"gem_id,meaning_representation,target\n\xff\xfe,x,y\n")
    with pytest.raises(DataError, match=r"test\.csv: cannot read as UTF-8"):
        read_viggo_file(path)


def test_data_dir_is_the_variable_from_the_working_directory_else_the_fallback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    beside = tmp_path / "shared" / "data"
    monkeypatch.delenv("FTBENCH_DATA_DIR", raising=False)
    assert data_dir() is None and data_dir(beside) == beside
    monkeypatch.setenv("FTBENCH_DATA_DIR", "  ")
    assert data_dir(beside) == beside
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTBENCH_DATA_DIR", "mirror")
    assert data_dir(beside) == tmp_path / "mirror"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FTBENCH_DATA_DIR", "~/mirror")
    assert data_dir() == tmp_path / "home" / "mirror"
