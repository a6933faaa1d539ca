"""Runs that measure or stress the whole system on real processes.

`python -m bench.chaos` drives complaints and activations while a supervisor kills the worker and restarts
the Temporal dev server, then checks that nothing was lost and no money moved twice.
"""
