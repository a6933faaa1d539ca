"""`python -m starter.local`, which `make run` runs."""

from starter.local.run import main

main()
