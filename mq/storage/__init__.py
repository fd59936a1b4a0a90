"""Storage: the only layer that knows SQL. The rest of the broker sees the `Store` interface."""
