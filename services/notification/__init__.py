"""The notification service: tells people about invoices and payments by email, exactly once per (event,
recipient, kind), with every attempt recorded."""
