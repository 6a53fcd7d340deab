"""integr8scode-backend: Public HTTP API: auth, execute, results, SSE, notification settings, rate
limits.
"""

SERVICE_NAME = "integr8scode-backend"
__version__ = "0.1.0"
