"""Use cases of ingest: each takes a command and runs in one unit of work."""
