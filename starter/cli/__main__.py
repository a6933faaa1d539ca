"""`python -m starter.cli`, as `make run` starts the worker and the API."""

from starter.cli.app import main

main()
