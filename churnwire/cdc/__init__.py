"""Change data capture: the Debezium Postgres connector, embedded, forwarding to Kafka."""
