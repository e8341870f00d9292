"""Crash-safe campaign work shared by the operators: ledger, reconcile, lease."""
