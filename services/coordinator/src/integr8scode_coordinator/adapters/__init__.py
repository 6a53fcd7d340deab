"""Adapters to infrastructure, each behind a Protocol the domain defines."""
