"""The metering service: owns metrics, deduplicated events and usage aggregates.

It consumes ingest's accepted event batches from JetStream exactly once (deduplicated on project and
event id), keeps usage per 15-minute bucket, and answers usage queries. See docs/metering.md.
"""
