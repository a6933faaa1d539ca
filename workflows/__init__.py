"""Temporal workflows: one module per workflow, deterministic and sandbox-safe."""
