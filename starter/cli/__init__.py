"""`refund-desk`, the command line: one module per command group over the desk."""

from starter.cli.app import main

__all__ = ["main"]
