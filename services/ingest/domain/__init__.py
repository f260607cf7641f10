"""Pure domain code of ingest: no gRPC, SQL or NATS here."""
