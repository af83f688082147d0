"""ftbench's lm-eval task folders, as package data: ``spider_sql/``, ``viggo/`` and the group ``ftbench.yaml``.

These are the only copy in the source tree. The package is what the ``lm_eval.tasks`` entry point names (lm-eval's
proposed task plugins, PR #4015, scan the named package's folder for YAMLs), and what ``ftbench eval`` gives lm-eval
as ``include_path``. A wheel also places the same files in ``lm_eval/tasks/ftbench/``, made from this folder at
build time (``hatch_build.py``), since lm-eval 0.4.13 finds tasks only there without ``--include_path``.
"""
