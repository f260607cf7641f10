"""The local runtime behind ``make run``: real PostgreSQL and NATS servers from pip-installed binaries, the
services as child processes, demo data, and the same pieces for the integration and end-to-end tests."""
