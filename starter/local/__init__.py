"""`make run`: the whole system on one machine (`python -m starter.local`): checks before anything starts
(`preflight`), the processes in order (`run`), and what it prints for a person (`banner`)."""
