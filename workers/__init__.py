"""The background worker process: SAQ on PostgreSQL, the outbox relay and the heartbeat."""
