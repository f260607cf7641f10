"""The payments service: owns payment orders, attempts, refunds and the provider webhook log.

It starts, migrates its schema and reports SERVING; its RPCs arrive in later issues.
"""
