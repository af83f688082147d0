"""``training/lora_sft.py`` run unchanged under a launcher, recording on each rank the training rows its model saw.

    FTBENCH_PROBE_DIR=DIR accelerate launch --multi_gpu --num_processes 2 tests/ddp_probe.py --config CONFIG …

writes ``DIR/rank<R>.json``: one list per training forward pass, of that batch's rows (token ids, padding removed).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

import lora_sft  # the training script, from training/

SEEN: list[list[list[int]]] = []


def _record(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
    if module.training:
        rows = zip(kwargs["input_ids"].tolist(), kwargs["attention_mask"].tolist(), strict=True)
        SEEN.append([[token for token, keep in zip(ids, mask, strict=True) if keep] for ids, mask in rows])


def _build_and_record(*args: Any, **kwargs: Any) -> Any:
    trainer = _build_trainer(*args, **kwargs)
    trainer.model.register_forward_pre_hook(_record, with_kwargs=True)
    return trainer


_build_trainer = lora_sft.build_trainer
lora_sft.build_trainer = _build_and_record

if __name__ == "__main__":
    code = lora_sft.main(sys.argv[1:])
    out = Path(os.environ["FTBENCH_PROBE_DIR"]) / f"rank{os.environ.get('RANK', '0')}.json"
    out.write_text(json.dumps(SEEN), encoding="utf-8")
    sys.exit(code)
