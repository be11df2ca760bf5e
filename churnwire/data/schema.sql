-- The shop's system of record as churnwire expects it. Idempotent: safe to apply on every start.
-- REPLICA IDENTITY FULL makes Debezium carry the whole previous row in `before` on updates and
-- deletes, which the feature engine needs to correct or remove an order's contribution.

CREATE TABLE IF NOT EXISTS customers (
    customer_id      text PRIMARY KEY,
    email            text,
    segment          text,
    country          text,
    acquisition_channel text,
    signup_at        timestamptz NOT NULL,
    marketing_opt_in boolean NOT NULL DEFAULT false,
    source           text NOT NULL DEFAULT 'shop',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
    order_id    text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (customer_id) ON DELETE CASCADE,
    amount      numeric(12, 2) NOT NULL CHECK (amount >= 0),
    items       integer NOT NULL DEFAULT 1 CHECK (items >= 0),
    category    text,
    status      text NOT NULL DEFAULT 'completed',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS orders_customer_created ON orders (customer_id, created_at);
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at);

ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE orders REPLICA IDENTITY FULL;
