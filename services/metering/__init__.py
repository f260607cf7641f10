"""The metering service: owns metrics, deduplicated events, usage aggregates, quotas and alert rules.

It starts, migrates its schema and reports SERVING; its RPCs arrive in later issues.
"""
