"""OpenAI fine-tuning, the library side of ``training/openai_finetune.py``:

- :mod:`.data` — chat JSONL from :mod:`ftbench.prompts` (``prepare``);
- :mod:`.validate` — OpenAI's documented format checks (``validate``);
- :mod:`.tokens`, :mod:`.estimate` — token counts (tiktoken, or a documented offline estimate), OpenAI's default
  epochs, the expected bill (``estimate``; prices in :mod:`ftbench.pricing`);
- :mod:`.jobs`, :mod:`.run` — upload, create, follow, resume, cancel, status; ``events.jsonl`` beside the
  ``run.json`` of :mod:`ftbench.finetune.record`.

The client (key from the environment only, retries, clear errors) is :mod:`ftbench.openai_client`, shared with
the chat model of :mod:`ftbench.lmeval`. Nothing here imports ``openai`` or ``tiktoken`` at import time.
"""
