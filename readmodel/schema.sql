-- Read models folded from the EVENTS stream. Everything here can be rebuilt
-- from the log (`tocsin projector rebuild`); nothing here is a source of truth.
-- Applied into a schema chosen by the caller (search_path), so a rebuild can
-- fill a fresh schema and swap it in.

CREATE TABLE IF NOT EXISTS position (
    name text PRIMARY KEY,
    seq bigint NOT NULL DEFAULT 0,
    undecodable bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO position (name) VALUES ('events') ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS tasks (
    id text PRIMARY KEY,
    grp text NOT NULL,
    domain text NOT NULL,
    url text NOT NULL,
    method text NOT NULL,
    ip_version int NOT NULL,
    check_kind text NOT NULL,
    expected jsonb,
    frequency double precision NOT NULL,
    definition jsonb NOT NULL,
    removed_at timestamptz,
    severity text,
    severity_since timestamptz,
    reason text,
    failures int NOT NULL DEFAULT 0,
    last_status text,
    last_detail text,
    last_checked_at timestamptz,
    last_result_seq bigint,
    http_status int,
    response_ms double precision,
    next_run timestamptz,
    last_agent text
);
CREATE INDEX IF NOT EXISTS tasks_domain ON tasks (domain);
CREATE INDEX IF NOT EXISTS tasks_grp ON tasks (grp);
-- /healthz and /metrics: the shortest frequency of the tasks agents run, in one lookup
-- (services/web/staleness.py; host figures and heartbeat monitors have no results).
CREATE INDEX IF NOT EXISTS tasks_dispatched_frequency ON tasks (frequency)
    WHERE removed_at IS NULL AND method <> 'HOST' AND check_kind <> 'heartbeat';

CREATE TABLE IF NOT EXISTS results (
    seq bigint NOT NULL,
    task_id text NOT NULL,
    grp text NOT NULL,
    agent text NOT NULL,
    location text NOT NULL,
    request text NOT NULL,
    checked_at timestamptz NOT NULL,
    status text NOT NULL,
    detail text NOT NULL,
    value double precision,
    http_status int,
    response_ms double precision,
    error text,
    observation jsonb NOT NULL,
    PRIMARY KEY (task_id, seq)
);
CREATE INDEX IF NOT EXISTS results_seq ON results (seq);

CREATE TABLE IF NOT EXISTS severity_changes (
    seq bigint NOT NULL,
    task_id text NOT NULL,
    at timestamptz NOT NULL,
    previous text,
    severity text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (task_id, seq)
);

CREATE TABLE IF NOT EXISTS agents (
    name text PRIMARY KEY,
    location text NOT NULL,
    version text NOT NULL,
    concurrency int NOT NULL,
    in_flight int NOT NULL,
    completed bigint NOT NULL,
    started_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    stopping boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS dead_letters (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    stream text NOT NULL,
    source_seq bigint NOT NULL,
    subject text NOT NULL,
    consumer text NOT NULL,
    reason text NOT NULL,
    excerpt text NOT NULL,
    grp text
);

CREATE TABLE IF NOT EXISTS config_history (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    revision text NOT NULL,
    source text NOT NULL,
    applied_by text NOT NULL,
    part int NOT NULL,
    parts int NOT NULL,
    added int NOT NULL,
    changed int NOT NULL,
    removed int NOT NULL,
    diff jsonb NOT NULL
);

-- Who was told what and when: one row per notification.sent / notification.failed event.
CREATE TABLE IF NOT EXISTS notifications (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    outcome text NOT NULL,
    key text NOT NULL,
    kind text NOT NULL,
    channel text NOT NULL,
    recipient text NOT NULL,
    severity text NOT NULL,
    previous text,
    task_id text,
    domain text,
    source_seq bigint NOT NULL,
    attempt int NOT NULL,
    error text,
    final boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS notifications_task ON notifications (task_id, seq);

-- Silences from `tocsin silence`; a removed one keeps its row with removed_at.
CREATE TABLE IF NOT EXISTS silences (
    id text PRIMARY KEY,
    seq bigint NOT NULL,
    created_at timestamptz NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    domain text,
    task_id text,
    reason text NOT NULL,
    created_by text NOT NULL,
    removed_at timestamptz,
    removed_by text
);

-- For the web: time windows over results (uptime, checks/s, agents' last hour) and the
-- audit trail newest first. BRIN: results arrive in time order, so it stays tiny and
-- costs the projector's writes next to nothing.
CREATE INDEX IF NOT EXISTS results_checked_at ON results USING brin (checked_at);
CREATE INDEX IF NOT EXISTS severity_changes_seq ON severity_changes (seq);

-- The requests of the log, so that a completion is stored only when it answers one of its
-- location (any other is a dead letter).
CREATE TABLE IF NOT EXISTS requests (
    id text PRIMARY KEY,
    location text NOT NULL,
    grp text NOT NULL,
    tasks text[] NOT NULL,
    seq bigint NOT NULL
);

-- Each agent's host as last observed (host.observed), and its figures over time for the
-- hosts page's graphs (the worst filesystem's used % stands for the disks).
CREATE TABLE IF NOT EXISTS hosts (
    agent text PRIMARY KEY,
    location text NOT NULL,
    hostname text NOT NULL,
    seq bigint NOT NULL,
    seen_at timestamptz NOT NULL,
    interval_s double precision NOT NULL,
    cores int NOT NULL,
    cpu_percent double precision NOT NULL,
    load1 double precision NOT NULL,
    load5 double precision NOT NULL,
    load15 double precision NOT NULL,
    memory_total bigint NOT NULL,
    memory_available bigint NOT NULL,
    memory_percent double precision NOT NULL,
    swap_total bigint NOT NULL,
    swap_free bigint NOT NULL,
    swap_percent double precision NOT NULL,
    boot_time timestamptz NOT NULL,
    filesystems jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS host_samples (
    seq bigint PRIMARY KEY,
    agent text NOT NULL,
    at timestamptz NOT NULL,
    cpu_percent double precision NOT NULL,
    load1 double precision NOT NULL,
    memory_percent double precision NOT NULL,
    swap_percent double precision NOT NULL,
    disk_percent double precision
);
CREATE INDEX IF NOT EXISTS host_samples_agent_at ON host_samples (agent, at);
-- When the log received an agent's last heartbeat, a host's last figures: their silence counts
-- from there (last_seen and seen_at are the agent's clock). Null in a row written before.
ALTER TABLE agents ADD COLUMN IF NOT EXISTS received_at timestamptz;
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS received_at timestamptz;

-- The life of each request, from the log: queued (check.requested), running (check.started;
-- deliveries counts them), completed, judged (the task.judged of its completion),
-- dead_lettered (out of deliveries) or cancelled (its group left the configuration before it
-- was judged). Written by services/projector/requests.py.
ALTER TABLE requests
    ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'queued',
    ADD COLUMN IF NOT EXISTS requested_at timestamptz,
    ADD COLUMN IF NOT EXISTS due timestamptz,
    ADD COLUMN IF NOT EXISTS requested_by text,
    ADD COLUMN IF NOT EXISTS agent text,
    ADD COLUMN IF NOT EXISTS deliveries int NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS started_at timestamptz,
    ADD COLUMN IF NOT EXISTS completed_at timestamptz,
    ADD COLUMN IF NOT EXISTS completion_seq bigint,
    ADD COLUMN IF NOT EXISTS run_ms double precision,
    ADD COLUMN IF NOT EXISTS error text,
    ADD COLUMN IF NOT EXISTS judged_at timestamptz,
    ADD COLUMN IF NOT EXISTS updated_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS requests_grp ON requests (grp, updated_seq DESC);
-- The judging of a completion looks among open requests only: one inserted already judged
-- (every request of a backlog or a rebuild) stays out of this index, one btree insert less.
DROP INDEX IF EXISTS requests_completion;
CREATE INDEX IF NOT EXISTS requests_open_completion ON requests (completion_seq)
    WHERE status IN ('queued', 'running', 'completed');
CREATE INDEX IF NOT EXISTS requests_open ON requests (grp)
    WHERE status IN ('queued', 'running', 'completed');
-- The projector prunes requests by age with the results (max_results_age); they come in
-- time order, so a BRIN index finds the old ones for next to nothing.
CREATE INDEX IF NOT EXISTS requests_requested_at ON requests USING brin (requested_at);
-- Status pages (issue 14): every post of an operator's incident (the first one opens it,
-- "resolved" closes it), and the e-mail subscribers of each page with their last state.
CREATE TABLE IF NOT EXISTS status_posts (
    seq bigint PRIMARY KEY,
    incident text NOT NULL,
    page text NOT NULL,
    at timestamptz NOT NULL,
    phase text NOT NULL,
    message text NOT NULL,
    by text NOT NULL,
    title text NOT NULL,
    components jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS status_posts_page ON status_posts (page, seq);
CREATE TABLE IF NOT EXISTS status_subscribers (
    page text NOT NULL,
    email text NOT NULL,
    seq bigint NOT NULL,
    at timestamptz NOT NULL,
    state text NOT NULL,
    token text NOT NULL,
    PRIMARY KEY (page, email)
);
