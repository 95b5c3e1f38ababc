-- Tenant store, version 4: devices, what they report and what they are told to do.
--
-- facts, samples, tags and params are JSON text. A device's telemetry is a hash
-- chain (prev_hash → hash per entry, like the audit log) so that an exported
-- history can be shown to be complete and unaltered: chain of custody.

CREATE TABLE devices (
    id UUID PRIMARY KEY,
    hostname TEXT NOT NULL,
    os_id TEXT NOT NULL,
    os_pretty_name TEXT NOT NULL,
    kernel TEXT NOT NULL,
    architecture TEXT NOT NULL,
    machine_id TEXT,
    agent_version TEXT NOT NULL,
    facts TEXT NOT NULL,
    tags TEXT NOT NULL,
    enrolled_at TIMESTAMPTZ NOT NULL,
    enrollment_token_id UUID NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    inventory_digest TEXT,
    inventory_updated_at TIMESTAMPTZ,
    telemetry_seq BIGINT NOT NULL DEFAULT 0,
    telemetry_head BYTEA NOT NULL
);

CREATE INDEX devices_by_hostname ON devices (hostname);

CREATE TABLE telemetry (
    device_id UUID NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    sampled_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    sample TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (device_id, seq)
);

CREATE TABLE inventory_packages (
    device_id UUID NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    manager TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    arch TEXT,
    source_name TEXT,
    source_version TEXT
);

CREATE INDEX inventory_by_device ON inventory_packages (device_id, name);

-- The organization's keys, sealed under the master key (AES-256-GCM, key id inside).
CREATE TABLE org_keys (
    purpose TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    sealed_private_key BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE commands (
    id UUID PRIMARY KEY,
    device_id UUID NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    signed TEXT NOT NULL,
    issued_by UUID,
    issued_by_name TEXT NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'delivered', 'running', 'succeeded', 'failed', 'timed_out', 'expired', 'cancelled', 'rejected')),
    delivered_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    exit_code BIGINT,
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    output_truncated BOOLEAN NOT NULL DEFAULT FALSE,
    reason TEXT
);

CREATE INDEX commands_by_device ON commands (device_id, issued_at);
CREATE INDEX commands_waiting ON commands (device_id, status, expires_at);
