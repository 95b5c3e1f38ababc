-- Control store, version 3: the audit outbox. A change made in the control store
-- that belongs in an organization's audit log (a membership, a rename) queues its
-- event here in the same transaction; the event is then appended to the
-- organization's log, in its own database, and removed from here. A crash in
-- between leaves the event queued, never lost; appending it again stores it once.

CREATE TABLE audit_outbox (
    event_id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    event TEXT NOT NULL
);

CREATE INDEX audit_outbox_by_org ON audit_outbox (org_id, position);
