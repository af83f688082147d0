"""ftbench: fine-tune an open model or a closed one? Decide with numbers.

The package holds the logic; the lm-eval task folders, training scripts and the CLI only forward to it.
"""

__version__ = "0.1.0"
