"""``billing``: the operator CLI, talking to a running gateway's admin API."""
