-- The audit log of this store (the platform log in the control store, an
-- organization's log in its tenant store), SQLite text. Entries are hash-chained
-- (see sentinel_core::audit::chain); the triggers below make the database itself
-- refuse to change or remove them, except that retention may prune whole ranges
-- up to a signed checkpoint. `sentinel audit verify` checks that these triggers
-- are still in place.

CREATE TABLE audit_entries (
    seq INTEGER PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    at TIMESTAMPTZ NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);

CREATE INDEX audit_by_action ON audit_entries (action, seq);
CREATE INDEX audit_by_actor ON audit_entries (actor_id, seq);
CREATE INDEX audit_by_entity ON audit_entries (entity_type, entity_id, seq);
CREATE INDEX audit_by_outcome ON audit_entries (outcome, seq);
CREATE INDEX audit_by_time ON audit_entries (at);

CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash BYTEA NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    key_id TEXT NOT NULL,
    signature BYTEA NOT NULL
);

CREATE TABLE audit_retention (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
);

INSERT INTO audit_retention (id, pruned_through) VALUES (1, 0);

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;

CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
WHEN OLD.seq > (SELECT pruned_through FROM audit_retention WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

CREATE TRIGGER audit_retention_forward_only BEFORE UPDATE ON audit_retention
WHEN NEW.pruned_through < OLD.pruned_through
  OR NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq = NEW.pruned_through)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are pruned forward only, up to a signed checkpoint');
END;

CREATE TRIGGER audit_retention_no_delete BEFORE DELETE ON audit_retention
BEGIN
    SELECT RAISE(ABORT, 'the audit retention mark cannot be removed');
END;
