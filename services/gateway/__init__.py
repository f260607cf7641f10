"""The gateway: the HTTP edge (REST with OpenAPI, the admin API, later the dashboard and provider webhooks).
It holds nothing financial: its schema has the admin audit log. It calls the services over gRPC."""
