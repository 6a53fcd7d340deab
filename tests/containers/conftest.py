"""The end-to-end fixtures (a registered user, the bootstrap admin), for the container checks."""

from tests.e2e.conftest import admin, http, user

__all__ = ["admin", "http", "user"]
