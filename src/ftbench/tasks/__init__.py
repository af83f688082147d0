"""ftbench's lm-eval task YAMLs, as package data: the package lm-eval's ``lm_eval.tasks`` entry point names.

A wheel ships ``lm_eval_tasks/`` of the checkout in this folder (``pyproject.toml``, ``force-include``), so the
entry point ``ftbench = "ftbench.tasks"`` names a package whose folder holds ``spider_sql/``, ``viggo/`` and
``ftbench.yaml``: lm-eval's proposed task plugins (PR #4015) scan the named package's folder for YAMLs. The same
files also go to ``lm_eval/tasks/ftbench/``, which lm-eval 0.4.13 indexes by itself. In a checkout or an editable
install this folder holds only this file; the YAMLs stay in ``lm_eval_tasks/`` (see ``ftbench.lmeval.tasks_dir``).
"""
