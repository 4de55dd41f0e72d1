"""Deployment files (Caddyfile, service scripts) and the local production topology (topology.py)."""
