"""The HTTP gateway: customer features and scores, alerts, and clickstream intake."""
