"""What starts and drives workflows: one client module, with the HTTP API and the CLI thin over it."""
