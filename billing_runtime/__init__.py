"""Shared plumbing for every service of the mesh: settings, logging, errors, database, migrations,
NATS/JetStream, the outbox, the gRPC server bootstrap and the service lifecycle.

Written once here so that each service under ``services/`` holds only its own domain, use cases,
adapters and entrypoints.
"""
