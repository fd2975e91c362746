-- The notifier's own durable state. Not a read model: it lives in its own schema so that
-- a projector rebuild (which swaps the read-model schema) never touches it.
CREATE SCHEMA IF NOT EXISTS tocsin_notifier;

-- Per task: the last judgement applied (the idempotency key is task + stream seq) and
-- what each channel was told in the current failure episode.
CREATE TABLE IF NOT EXISTS tocsin_notifier.task_state (
    task text PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0,
    told jsonb NOT NULL DEFAULT '{}'
);
-- The last severity judged (what a dependant's notifications are held by) and since when
-- (an acknowledgement counts for the episode it was made in).
ALTER TABLE tocsin_notifier.task_state ADD COLUMN IF NOT EXISTS severity text NOT NULL
    DEFAULT 'ok';
ALTER TABLE tocsin_notifier.task_state ADD COLUMN IF NOT EXISTS since float8 NOT NULL
    DEFAULT 0;
-- The group of its last judgement: a host's tasks are defined per host, not by the
-- configuration file, so their leaving the file's configuration says nothing (retire.py).
ALTER TABLE tocsin_notifier.task_state ADD COLUMN IF NOT EXISTS grp text;

-- One row per notification to one recipient, written in the same transaction as the
-- decision, before the JetStream ack. A sender claims a row with a conditional UPDATE
-- (the healthchecks.io pattern), so two notifiers never both send it.
CREATE TABLE IF NOT EXISTS tocsin_notifier.outbox (
    key text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    channel text NOT NULL,
    recipient text NOT NULL,
    message jsonb NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    sent_at timestamptz,
    given_up_at timestamptz,
    last_error text
);
-- When the rate limit of its channel let the row through (what a limit counts), and when it
-- last held it back.
ALTER TABLE tocsin_notifier.outbox ADD COLUMN IF NOT EXISTS admitted_at timestamptz;
ALTER TABLE tocsin_notifier.outbox ADD COLUMN IF NOT EXISTS held_at timestamptz;
-- The group a row waits in to go out with others (general.channels.NAME.group_window).
ALTER TABLE tocsin_notifier.outbox ADD COLUMN IF NOT EXISTS grp text;
CREATE INDEX IF NOT EXISTS outbox_group ON tocsin_notifier.outbox (channel, recipient, grp)
    WHERE grp IS NOT NULL AND sent_at IS NULL AND given_up_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_admitted ON tocsin_notifier.outbox (channel, admitted_at)
    WHERE admitted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_due ON tocsin_notifier.outbox (next_attempt_at)
    WHERE sent_at IS NULL AND given_up_at IS NULL;
-- What a row's news is about (a task, the agents, a location; store.about) and its place in
-- the log (the judgement's stream sequence): a newer row about the same thing for the same
-- recipient supersedes an older one not yet sent, and no row goes out while an older one
-- about the same thing is in flight, so a receiver's last message is the latest state.
ALTER TABLE tocsin_notifier.outbox ADD COLUMN IF NOT EXISTS about text;
ALTER TABLE tocsin_notifier.outbox ADD COLUMN IF NOT EXISTS seq bigint NOT NULL DEFAULT 0;
UPDATE tocsin_notifier.outbox SET about = message->>'task',
    seq = coalesce((message->>'source_seq')::bigint, 0)
    WHERE about IS NULL AND message->>'task' IS NOT NULL AND sent_at IS NULL
      AND given_up_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_about ON tocsin_notifier.outbox
    (about, channel, recipient, seq, created_at) WHERE about IS NOT NULL;

-- Events to publish (notification sent / failed), written with the outcome they record,
-- so a crash between the two never loses the audit trail.
CREATE TABLE IF NOT EXISTS tocsin_notifier.pending_events (
    id bigserial PRIMARY KEY,
    subject text NOT NULL,
    data bytea NOT NULL,
    msg_id text NOT NULL
);

-- Flags shared by every notifier: the no-agent episode in progress, if any.
CREATE TABLE IF NOT EXISTS tocsin_notifier.flags (
    name text PRIMARY KEY,
    value jsonb NOT NULL
);
