"""The viggo task folder (YAMLs, README, utils.py); a package so that type checkers name its utils.py."""
