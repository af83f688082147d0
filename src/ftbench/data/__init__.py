"""Load the study's datasets as typed examples, from the Hugging Face hub or a local mirror.

When ``FTBENCH_DATA_DIR`` is set, files are read from ``$FTBENCH_DATA_DIR/spider_sql/`` and
``$FTBENCH_DATA_DIR/viggo/`` and the network is never touched; otherwise they come from the hub.
"""

from ftbench.data._examples import SqlExample, ViggoExample
from ftbench.data._load import (
    EVAL_SPLITS,
    SPIDER_SQL_REPO,
    SPIDER_SQL_SPLITS,
    VIGGO_REPO,
    VIGGO_SPLITS,
    data_dir,
    load_spider_sql,
    load_viggo,
    read_spider_sql_file,
    read_viggo_file,
)

__all__ = [
    "EVAL_SPLITS",
    "SPIDER_SQL_REPO",
    "SPIDER_SQL_SPLITS",
    "VIGGO_REPO",
    "VIGGO_SPLITS",
    "SqlExample",
    "ViggoExample",
    "data_dir",
    "load_spider_sql",
    "load_viggo",
    "read_spider_sql_file",
    "read_viggo_file",
]
