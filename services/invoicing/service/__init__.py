"""Use cases of invoicing: each takes a command and runs in one unit of work."""
