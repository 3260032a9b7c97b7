"""What every domain stands on: the database and its sessions, the config-property registry,
the process environment, one installation's shared parts, security primitives, reading
requests and uploads, the thread policy, middleware and observability.

Imports no domain package and no adapter.
"""
