"""execution-coordinator: Consumes execution requests; admission (queue, per-user and global
concurrency); runs the saga; drives the sandbox runner; persists state; publishes lifecycle
events.
"""

SERVICE_NAME = "execution-coordinator"
__version__ = "0.1.0"
