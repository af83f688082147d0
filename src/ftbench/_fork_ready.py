"""Imported last by the fork server of ``ftbench demo`` (:data:`ftbench.demo.WORKER_IMPORTS`), after the libraries
it preloads: moves their objects out of the garbage collector's reach, as Python's documentation of
:func:`gc.freeze` advises before forking. The recipes' processes forked from the server then never walk those
objects, and the server itself, which exits after the demo's main process, exits in a fraction of a second
instead of ~3 s of shutdown collections (during which whatever reads the demo's output waits for it)."""

import gc

gc.freeze()
