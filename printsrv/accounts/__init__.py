"""printsrv's side of money: the door to the `financial` core (names, settings, transfers,
adjustments, error translation), the financial reports, and idempotency keys."""
