"""churnwire: streaming-first, real-time customer churn analytics."""
