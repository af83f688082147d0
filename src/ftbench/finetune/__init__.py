"""Library side of training, by what it trains:

- :mod:`ftbench.finetune.lora` — LoRA adapters with peft + trl (``training/lora_sft.py``);
- :mod:`ftbench.finetune.openai` — OpenAI fine-tunes (``training/openai_finetune.py``);
- :mod:`ftbench.finetune.scratch` — the demo's from-scratch trainer (``ftbench demo``);
- :mod:`ftbench.finetune.record` — ``run.json``, the one typed record every run leaves (``kind: lora | openai``),
  written atomically and read back by the leaderboard;
- :mod:`ftbench.finetune.study` — the 2023 study's four runs, priced by :mod:`ftbench.pricing`.

Prices (GPU-hour, CPU core-hour, tokens; dated) live in :mod:`ftbench.pricing`, the OpenAI client in
:mod:`ftbench.openai_client`. Nothing here imports ``openai`` or ``tiktoken`` at import time.
"""
