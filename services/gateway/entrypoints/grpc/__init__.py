"""The gateway's gRPC API (billing.gateway.v1.AccessService), for people and their tools with a staff token."""
