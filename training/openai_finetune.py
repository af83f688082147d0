"""Fine-tune an OpenAI model on the study's data, with the prompts the chat tasks are evaluated with.

A thin script: :mod:`ftbench.finetune.openai.cli` reads the arguments and the typed config
(:mod:`ftbench.finetune.openai.config`), the rest of :mod:`ftbench.finetune.openai` does the work. Needs
``pip install 'ftbench[openai]'``; the key is read from ``OPENAI_API_KEY`` only, and never printed or stored.
Commands (``prepare``, ``validate``, ``estimate``, ``submit``, ``resume``, ``status``, ``cancel``) are listed with
examples in that module's docstring and by ``python training/openai_finetune.py --help``.
"""

from __future__ import annotations

import sys

from ftbench.finetune.openai.cli import main

if __name__ == "__main__":
    sys.exit(main())
