-- The audit log of this store (the platform log in the control schema, an
-- organization's log in its tenant schema), PostgreSQL text. Entries are
-- hash-chained (see sentinel_core::audit::chain); the triggers below make the
-- database itself refuse to change or remove them, except that retention may
-- prune whole ranges up to a signed checkpoint, and UPDATE, DELETE and TRUNCATE
-- are revoked from PUBLIC. `sentinel audit verify` checks that the triggers are
-- still in place.

CREATE TABLE audit_entries (
    seq BIGINT PRIMARY KEY,
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
    seq BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    key_id TEXT NOT NULL,
    signature BYTEA NOT NULL
);

CREATE TABLE audit_retention (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT NOT NULL
);

INSERT INTO audit_retention (id, pruned_through) VALUES (1, 0);

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION audit_guard_entry_delete() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF OLD.seq > (SELECT pruned_through FROM audit_retention WHERE id = 1) THEN
        RAISE EXCEPTION 'audit entries are append-only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;

CREATE FUNCTION audit_guard_prune() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.pruned_through < OLD.pruned_through
       OR NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq = NEW.pruned_through) THEN
        RAISE EXCEPTION 'audit entries are pruned forward only, up to a signed checkpoint'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_guard_entry_delete();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_retention_forward_only BEFORE UPDATE ON audit_retention
    FOR EACH ROW EXECUTE FUNCTION audit_guard_prune();
CREATE TRIGGER audit_retention_no_delete BEFORE DELETE ON audit_retention
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_retention_no_truncate BEFORE TRUNCATE ON audit_retention
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries, audit_checkpoints, audit_retention FROM PUBLIC;
