"""The shop's return policy as pure, deterministic Python.

Nothing here does I/O or reads the clock: workflows import this package inside the Temporal sandbox and
tests call it directly. Settings are read from the environment only by `PolicySettings`, outside workflows.
"""
