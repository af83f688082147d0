"""Library side of training: LoRA (``lora_*``, used by ``training/lora_sft.py``) and OpenAI fine-tuning
(``openai_*``, used by ``training/openai_finetune.py``).

The OpenAI modules:

- :mod:`~ftbench.finetune.openai_data` — chat JSONL from :mod:`ftbench.prompts` (``prepare``);
- :mod:`~ftbench.finetune.openai_validate` — OpenAI's documented format checks (``validate``);
- :mod:`~ftbench.finetune.openai_tokens`, :mod:`~ftbench.finetune.openai_estimate` — token counts (tiktoken,
  or a documented offline estimate), OpenAI's default epochs, the expected bill (``estimate``);
- :mod:`~ftbench.finetune.cost` — dated per-token price tables and cost arithmetic (GPU-hour costs of LoRA
  runs: :mod:`~ftbench.finetune.lora_cost`);
- :mod:`~ftbench.finetune.openai_client` — key from the environment only, retries with backoff, clear errors;
- :mod:`~ftbench.finetune.openai_jobs`, :mod:`~ftbench.finetune.openai_run` — upload, create, follow, resume,
  cancel, status; ``events.jsonl``.

Both kinds of run leave a ``run.json`` written and read by :mod:`~ftbench.finetune.record` (one typed record,
``kind: lora | openai``, written atomically).

Nothing here imports ``openai`` or ``tiktoken`` at import time; they are needed only when used.
"""
