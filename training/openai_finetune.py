"""Fine-tune an OpenAI model on the study's data, with the prompts the chat tasks are evaluated with.

A thin script: :mod:`ftbench.finetune.openai.cli` reads the arguments and the typed config
(:mod:`ftbench.finetune.openai.config`), the rest of :mod:`ftbench.finetune.openai` does the work. Needs
``pip install 'ftbench[openai]'``; the key is read from ``OPENAI_API_KEY`` only, and never printed or stored::

    python training/openai_finetune.py prepare  --config training/configs/openai_spider.yaml
    python training/openai_finetune.py validate --config training/configs/openai_spider.yaml
    python training/openai_finetune.py estimate --config training/configs/openai_spider.yaml
    python training/openai_finetune.py submit   --config training/configs/openai_spider.yaml
    python training/openai_finetune.py resume   --out ftbench-out/openai/spider
    python training/openai_finetune.py status   ftjob-abc123
    python training/openai_finetune.py cancel   ftjob-abc123 --out ftbench-out/openai/spider

``python training/openai_finetune.py COMMAND --help`` describes each command.
"""

from __future__ import annotations

import sys

from ftbench.finetune.openai.cli import main

if __name__ == "__main__":
    sys.exit(main())
