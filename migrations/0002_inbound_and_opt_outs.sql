-- Inbound messages, opt-outs and session messages.
--
-- Adds: messages.body (the text of a session message), with template_id and
-- content_sid now optional under a CHECK that a row is exactly one kind;
-- inbound_messages (every message a customer sent us, once); opt_outs (each
-- number's current opt-out state); and the indexes that link an inbound
-- message to its customer's latest order and derive the 24-hour window.
--
-- Backward compatible: every existing row is a template message and passes the
-- CHECK; code that inserts template messages and reads them is unchanged. Only
-- session messages (written by a newer gateway) have a NULL template_id. The
-- recorder writes inbound_messages and opt_outs; the gateway and the sender read them.

ALTER TABLE messages
    ADD COLUMN body text,
    ALTER COLUMN template_id DROP NOT NULL,
    ALTER COLUMN content_sid DROP NOT NULL,
    ADD CONSTRAINT messages_kind_check CHECK (
        (template_id IS NOT NULL AND content_sid IS NOT NULL AND body IS NULL)
        OR (template_id IS NULL AND content_sid IS NULL AND body IS NOT NULL
            AND char_length(body) BETWEEN 1 AND 4096)
    );

-- An inbound message is linked to its customer's latest outbound message:
-- newest first by phone number.
CREATE INDEX messages_phone_idx ON messages (phone_number, created_at DESC, id DESC);

-- Every message a customer sent to one of our numbers, once: Twilio redelivers
-- a webhook it saw no 2xx for, and Kafka redelivers after a crash, so the
-- MessageSid is unique and a second copy is dropped.
CREATE TABLE inbound_messages (
    id             bigserial PRIMARY KEY,
    twilio_sid     text NOT NULL UNIQUE,
    -- The customer (E.164, without Twilio's "whatsapp:" prefix) and our number.
    phone_number   text NOT NULL CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    to_number      text NOT NULL,
    body           text NOT NULL DEFAULT '',
    profile_name   text,
    wa_id          text,
    button_payload text,
    button_text    text,
    num_media      integer NOT NULL DEFAULT 0 CHECK (num_media >= 0),
    -- Twilio's OptOutType (STOP, START, HELP) when it recognised a keyword.
    opt_out_type   text,
    -- From the customer's most recent outbound message that names one, when the
    -- inbound message was recorded; NULL when we never wrote to this number.
    customer_id    text,
    order_id       text,
    -- When the webhook received it (Twilio sends no timestamp of its own).
    received_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

-- The 24-hour customer-service window of a number is max(received_at) + 24 h,
-- read through this index in one probe. There is deliberately no window table:
-- it would be a copy of this fact that every writer must keep in step (with the
-- same newer-only guard, since inbound events arrive late and twice), while the
-- index answers "latest inbound of this number" from the rows themselves.
CREATE INDEX inbound_messages_phone_idx ON inbound_messages (phone_number, received_at DESC);

-- The order timeline: an order's inbound replies in time order.
CREATE INDEX inbound_messages_order_idx ON inbound_messages (order_id, received_at)
    WHERE order_id IS NOT NULL;

-- Each number's opt-out state, changed by STOP/START keywords (or Twilio's
-- OptOutType). changed_at is the received_at of the inbound message that set
-- it; a change is applied only when it is newer than the stored one, so a STOP
-- and a START delivered out of order still end in the state of the later one.
CREATE TABLE opt_outs (
    phone_number text PRIMARY KEY CHECK (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
    opted_out    boolean NOT NULL,
    -- The keyword that changed it: Twilio's OptOutType, else the body's keyword.
    keyword      text NOT NULL,
    changed_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
