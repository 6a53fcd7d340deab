"""Integr8sCode Mongo: how every service reaches the MongoDB-wire server.

The ``MONGO_*`` settings fragment, the one way a service builds its client, and the readiness
ping; see the README.
"""

from integr8scode_mongo.client import mongo_client, mongo_ping
from integr8scode_mongo.settings import MongoSettings

__all__ = ["MongoSettings", "mongo_client", "mongo_ping"]
