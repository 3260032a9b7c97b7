"""printsrv: a print-management server, wire-compatible with SavaPage's public APIs."""

__version__ = "0.1.0"
