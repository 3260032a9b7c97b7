"""Asynchronous jobs: long work started by one request and polled by key (`docs/jobs.md`)."""
