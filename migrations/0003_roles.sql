-- Database roles: what each process may do, and nothing more.
--
-- Adds four NOLOGIN group roles, one per process that talks to PostgreSQL, with
-- exactly the privileges its SQL needs. A deployment gives each process a LOGIN
-- user of its own that is a member of its role, e.g.
--     CREATE ROLE notifier_gateway_app LOGIN PASSWORD '...' IN ROLE notifier_gateway;
-- and puts that user in the process's DATABASE_URL.
--
--   notifier_gateway   accepts messages (messages + first history row + outbox, one
--                      statement), stamps and relays the outbox (UPDATE, FOR UPDATE
--                      of two outbox columns only), reads templates, messages and their
--                      history; reads inbound_messages and opt_outs (the 24-hour window
--                      and opt-out state of session messages, the order timeline).
--   notifier_sender    reads messages and opt_outs (the check before each Twilio call);
--                      leases send slots in sender_rate_slots (its only write).
--   notifier_recorder  applies statuses (UPDATE of the status columns of messages only),
--                      history, inbound_messages and opt_outs.
--   notifier_operator  owns the rows of templates (insert and update; rows are never
--                      deleted, messages point at them).
-- The webhook has no role: it never connects to PostgreSQL.
--
-- Migrations themselves run as the owner of the schema (the migration Job's
-- DATABASE_URL): only an owner may create, alter and grant on these tables, so there
-- is no migrator role to grant. A table added by a later migration gets its grants
-- in that migration; nothing is granted by default.
--
-- Roles belong to the whole cluster, not to one database: each is created only when
-- missing (another database of the cluster, or a DBA, may have made it already), and
-- creating one needs CREATEROLE; without it, create the four roles first (NOLOGIN).
-- USAGE on the schema comes from PUBLIC unless it was revoked; then it is granted here
-- when the migrating user may (it owns the schema), else a DBA must grant it.
--
-- Backward compatible: grants only; no table or existing privilege changes.

DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY[
        'notifier_gateway', 'notifier_sender', 'notifier_recorder', 'notifier_operator'
    ] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = role_name);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
        EXCEPTION
            -- Created by a migration of another database at the same moment.
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % is missing and % may not create roles', role_name,
                    current_user
                    USING HINT = format('create it first: CREATE ROLE %I NOLOGIN', role_name);
        END;
    END LOOP;
END
$$;

DO $$
BEGIN
    IF pg_has_role(
        (SELECT nspowner FROM pg_namespace WHERE nspname = current_schema()), 'MEMBER'
    ) THEN
        EXECUTE format(
            'GRANT USAGE ON SCHEMA %I TO notifier_gateway, notifier_sender, '
            'notifier_recorder, notifier_operator',
            current_schema()
        );
    END IF;
END
$$;

-- The gateway.
GRANT SELECT ON templates TO notifier_gateway;
GRANT SELECT, INSERT ON messages, message_status_history TO notifier_gateway;
GRANT SELECT, INSERT ON outbox TO notifier_gateway;
GRANT UPDATE (published_at, publish_count) ON outbox TO notifier_gateway;
GRANT USAGE ON SEQUENCE messages_id_seq TO notifier_gateway;
GRANT SELECT ON inbound_messages, opt_outs TO notifier_gateway;

-- The sender.
GRANT SELECT ON messages, opt_outs TO notifier_sender;
GRANT SELECT, INSERT ON sender_rate_slots TO notifier_sender;
GRANT UPDATE (next_slot_at) ON sender_rate_slots TO notifier_sender;

-- The recorder.
GRANT SELECT ON messages TO notifier_recorder;
GRANT UPDATE (status, error_code, error_message, twilio_sid, updated_at)
    ON messages TO notifier_recorder;
GRANT SELECT, INSERT ON message_status_history, inbound_messages TO notifier_recorder;
GRANT USAGE ON SEQUENCE inbound_messages_id_seq TO notifier_recorder;
GRANT SELECT, INSERT ON opt_outs TO notifier_recorder;
GRANT UPDATE (opted_out, keyword, changed_at, updated_at) ON opt_outs TO notifier_recorder;

-- The operator.
GRANT SELECT, INSERT, UPDATE ON templates TO notifier_operator;
