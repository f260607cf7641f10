"""The ingest service: owns projects and their API keys; in later issues it accepts usage events."""
