"""The notification service: owns templates and the outbound message log.

It starts, migrates its schema and reports SERVING; its RPCs arrive in later issues.
"""
