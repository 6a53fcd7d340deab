"""notifier: Consumes terminal execution events; delivers signed webhooks and Slack messages;
records deliveries.
"""

SERVICE_NAME = "notifier"
__version__ = "0.1.0"
