"""The embedded stack: private PostgreSQL, Redis and a Kafka-protocol broker on 127.0.0.1."""
