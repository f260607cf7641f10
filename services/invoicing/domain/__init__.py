"""Pure domain code of invoicing: no gRPC, SQL or NATS here."""
