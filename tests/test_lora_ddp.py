"""Several ranks: `accelerate launch` (DDP) trains the tiny model on 2 CPU ranks; the launch checks; accelerate configs.

accelerate 1.15 runs `accelerate launch --cpu --num_processes 2` as ONE process (commands/launch.py: `--cpu` always
takes `simple_launcher`, which starts several only through mpirun). The test therefore takes accelerate's torchrun
launcher (`--multi_gpu`, the route of a real multi-GPU launch) with ACCELERATE_USE_CPU=true, which makes each rank a
CPU rank of a gloo process group (accelerate/state.py, `_prepare_backend`: MULTI_CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ftbench.errors import InputError
from ftbench.finetune.lora.checks import check_launch
from ftbench.finetune.lora.config import load_config
from tests.conftest import REPO_ROOT, have_mirror, mirror_dir
from tests.lmeval_runs import evaluate_adapter

CONFIG = REPO_ROOT / "training" / "configs" / "tiny_cpu.yaml"
STUDY = REPO_ROOT / "training" / "configs" / "codellama34b_spider.yaml"
ACCELERATE_CONFIGS = sorted((REPO_ROOT / "training" / "configs" / "accelerate").glob("*.yaml"))
TRAIN_ROWS, PER_RANK_BATCH, STEPS = 64, 8, 8  # 2 ranks × 8 rows: 4 steps per epoch, 2 epochs


def _launch(tiny_model: Path, out: Path, probe: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
               str(REPO_ROOT / "tests" / "ddp_probe.py"), "--config", str(CONFIG), "--model_name_or_path",
               str(tiny_model), "--output_dir", str(out), "--train_limit", str(TRAIN_ROWS), "--eval_limit", "8",
               "--max_steps", str(STEPS), "--eval_steps", "4", "--save_steps", str(STEPS), "--logging_steps", "2",
               "--warmup_steps", "1"]
    env = {**os.environ, "FTBENCH_DATA_DIR": str(mirror_dir()), "FTBENCH_PROBE_DIR": str(probe),
           "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(command, env=env, cwd=probe, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_two_ranks_train_shard_the_data_and_write_one_run_json(tiny_model: Path, tmp_path: Path) -> None:
    if not have_mirror():
        pytest.skip(f"dataset mirror not found at {mirror_dir()}")
    out, probe = tmp_path / "run", tmp_path / "probe"
    probe.mkdir()
    done = _launch(tiny_model, out, probe)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("run.json:") == 1, "only rank 0 reports"

    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert (record["world_size"], record["steps"]) == (2, STEPS)
    assert record["gpu_count"] % 2 == 0, "device count = ranks x (one GPU, or the CPU cores each rank uses)"
    assert (record["per_device_train_batch_size"], record["global_batch_size"]) == (PER_RANK_BATCH, 16)
    assert record["gpu_hours"] == pytest.approx(record["wall_time_s"] / 3600 * record["gpu_count"])
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [], "no partial run.json left"

    ranks = [json.loads((probe / f"rank{r}.json").read_text(encoding="utf-8")) for r in (0, 1)]
    assert [len(batches) for batches in ranks] == [STEPS, STEPS]
    assert all(a != b for a, b in zip(*ranks, strict=True)), "the ranks see different rows at every step"
    rows = [[tuple(row) for batch in batches for row in batch] for batches in ranks]
    first_epoch = Counter(rows[0][:TRAIN_ROWS // 2]) + Counter(rows[1][:TRAIN_ROWS // 2])
    assert set(first_epoch) == set(rows[0]) | set(rows[1]), "together the ranks cover the data in one epoch"
    assert sum(first_epoch.values()) == TRAIN_ROWS

    assert "exact_match,none" in evaluate_adapter(tiny_model, out / "adapter", tmp_path / "eval")


def test_several_gpus_in_one_process_are_refused_with_the_launch_command() -> None:
    config = load_config(CONFIG, ["--model_name_or_path", "x/y"])
    with pytest.raises(InputError, match=r"accelerate launch .*ddp\.yaml --num_processes 4"):
        check_launch(config, environ={}, visible_gpus=4)
    check_launch(config, environ={"LOCAL_RANK": "0", "WORLD_SIZE": "4"}, visible_gpus=4)
    check_launch(config, environ={}, visible_gpus=1)


@pytest.mark.parametrize("variable", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_int8_is_not_sharded(variable: str) -> None:
    study = load_config(STUDY, [])
    launched = {"LOCAL_RANK": "0", "WORLD_SIZE": "2", variable: "true"}
    with pytest.raises(InputError, match="4-bit QLoRA"):
        check_launch(study, environ=launched, visible_gpus=2)
    check_launch(load_config(STUDY, ["--load_in_8bit", "false", "--dtype", "bfloat16"]), environ=launched,
                 visible_gpus=2)
    check_launch(study, environ={"LOCAL_RANK": "0", "WORLD_SIZE": "2"}, visible_gpus=2)


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_configs_load_in_accelerate(path: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(path))
    expected = {"ddp.yaml": "MULTI_GPU", "fsdp.yaml": "FSDP", "deepspeed_zero3.yaml": "DEEPSPEED"}[path.name]
    assert str(loaded.distributed_type).rsplit(".", 1)[-1] == expected
    assert "accelerate launch --config_file training/configs/accelerate/" + path.name in path.read_text("utf-8")


def test_every_route_has_a_config() -> None:
    assert {p.name for p in ACCELERATE_CONFIGS} == {"ddp.yaml", "fsdp.yaml", "deepspeed_zero3.yaml"}
