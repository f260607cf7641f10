"""Local stand-ins for third-party providers, speaking their real wire formats, for tests and `make run`."""
