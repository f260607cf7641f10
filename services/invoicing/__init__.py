"""The invoicing service: owns organisations (the billed accounts) and, in later issues, plans,
subscriptions, invoices, tax and FX tables."""
