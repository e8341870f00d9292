"""Delivery reports: every recipient's outcome, streamed from the provider into a file or a SQL table."""
