-- The initial schema (the role of the original service's db/init_db.sql).
--
-- Who writes what: the gateway inserts messages, their first history row and
-- their outbox entry; the recorder applies every later status change; the
-- operator owns templates (until it runs, the five logistics templates below
-- are seeded with development Content SIDs).

CREATE TABLE templates (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    language    text NOT NULL DEFAULT 'en',
    content_sid text NOT NULL CHECK (content_sid ~ '^HX[0-9a-f]{32}$'),
    category    text NOT NULL DEFAULT 'utility'
                CHECK (category IN ('utility', 'marketing', 'authentication')),
    -- The template text with named placeholders, e.g. 'Order {{order_id}} shipped'.
    body        text NOT NULL,
    -- The named parameters in declared order: [{"name": ..., "required": ..., "max_length": ...}].
    -- Their order maps them to Twilio's positional ContentVariables "1", "2", ...
    parameters  jsonb NOT NULL CHECK (jsonb_typeof(parameters) = 'array'),
    enabled     boolean NOT NULL DEFAULT true,
    -- 'migration' for the seeded rows, else the MessageTemplate resource that owns the row.
    source      text NOT NULL DEFAULT 'migration',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO templates (name, content_sid, body, parameters) VALUES
    ('order_confirmation', 'HX' || md5('order_confirmation'),
     'Your order {{order_id}} is confirmed. We will message you when it ships.',
     '[{"name": "order_id", "required": true, "max_length": 64}]'),
    ('shipment_dispatched', 'HX' || md5('shipment_dispatched'),
     'Your order {{order_id}} is on its way. Tracking number: {{tracking_id}}. Estimated delivery: {{estimated_delivery}}.',
     '[{"name": "order_id", "required": true, "max_length": 64},
       {"name": "tracking_id", "required": true, "max_length": 64},
       {"name": "estimated_delivery", "required": true, "max_length": 64}]'),
    ('delivery_eta', 'HX' || md5('delivery_eta'),
     'Your order {{order_id}} is expected to arrive {{estimated_delivery}}.',
     '[{"name": "order_id", "required": true, "max_length": 64},
       {"name": "estimated_delivery", "required": true, "max_length": 64}]'),
    ('delivery_confirmation', 'HX' || md5('delivery_confirmation'),
     'Your order {{order_id}} has been delivered. Thank you!',
     '[{"name": "order_id", "required": true, "max_length": 64}]'),
    ('delay_notification', 'HX' || md5('delay_notification'),
     'Your order {{order_id}} is delayed: {{reason}}. New estimated delivery: {{new_estimated_delivery}}.',
     '[{"name": "order_id", "required": true, "max_length": 64},
       {"name": "reason", "required": true, "max_length": 200},
       {"name": "new_estimated_delivery", "required": true, "max_length": 64}]');

CREATE TABLE messages (
    id                bigserial PRIMARY KEY,
    phone_number      text NOT NULL CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    template_id       text NOT NULL REFERENCES templates (name),
    parameters        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- What was handed to Twilio, fixed at accept time so a later template change
    -- does not alter a message already accepted.
    content_sid       text NOT NULL,
    content_variables jsonb NOT NULL DEFAULT '{}'::jsonb,
    order_id          text,
    customer_id       text,
    status            text NOT NULL DEFAULT 'QUEUED' CHECK (status IN
                      ('QUEUED', 'SENDING', 'SENT', 'DELIVERED', 'READ', 'FAILED', 'UNDELIVERED')),
    twilio_sid        text UNIQUE,
    error_code        integer,
    error_message     text,
    -- A caller's retry with the same key and the same request (same hash) gets
    -- the first id back; the same key with another request is a conflict.
    idempotency_key   text UNIQUE,
    request_hash      bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- ListMessages: newest first, ties broken by id, for each filter.
CREATE INDEX messages_created_idx ON messages (created_at DESC, id DESC);
CREATE INDEX messages_order_idx ON messages (order_id, created_at DESC, id DESC)
    WHERE order_id IS NOT NULL;
CREATE INDEX messages_customer_idx ON messages (customer_id, created_at DESC, id DESC)
    WHERE customer_id IS NOT NULL;
CREATE INDEX messages_status_idx ON messages (status, created_at DESC, id DESC);

-- Every status a message reached, once each, with when it happened.
CREATE TABLE message_status_history (
    message_id    bigint NOT NULL REFERENCES messages (id),
    status        text NOT NULL,
    error_code    integer,
    error_message text,
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    -- 'gateway', 'sender' or 'twilio'
    source        text NOT NULL,
    PRIMARY KEY (message_id, status)
);

-- Send commands committed with their message and not yet confirmed by the
-- broker. The gateway publishes right after commit and stamps published_at
-- when the broker acknowledges; its relay republishes rows left unstamped
-- (a crash between commit and publish, or a broker outage).
CREATE TABLE outbox (
    message_id    bigint PRIMARY KEY REFERENCES messages (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    publish_count integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_unpublished_idx ON outbox (created_at) WHERE published_at IS NULL;

-- The order statuses move in; FAILED and UNDELIVERED are final and outrank all.
-- Mirrors notifier.common.domain.status; the recorder's UPDATE repeats this
-- guard in SQL because two recorders can race on one message.
CREATE FUNCTION message_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
    CASE status
        WHEN 'QUEUED' THEN 0
        WHEN 'SENDING' THEN 1
        WHEN 'SENT' THEN 2
        WHEN 'DELIVERED' THEN 3
        WHEN 'READ' THEN 4
        WHEN 'FAILED' THEN 5
        WHEN 'UNDELIVERED' THEN 5
    END;

-- The global send pace of each sender number, shared by all sender replicas
-- (the one table the sender writes). next_slot_at is the earliest time the
-- next Twilio call from this sender may start; a replica leases a run of
-- evenly spaced slots by pushing it forward (GCRA), so the replicas together
-- never exceed the number's messages per second.
CREATE TABLE sender_rate_slots (
    sender       text PRIMARY KEY,
    next_slot_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
