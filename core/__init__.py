"""Infrastructure shared by the apps (neither accounts nor annotation): prepared statements, the
resilient cache, health, metrics, request ids and logs, start-up checks.

Imports no app and nothing from config/ (the composition root): an app that wants to publish
figures on /metrics registers a collector here (core.metrics.register_collector).
"""
