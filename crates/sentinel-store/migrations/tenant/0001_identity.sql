-- Tenant store, version 1: the stamp that ties this database (or schema) to one
-- organization. Opening a tenant store checks it, so a database file copied or
-- swapped into another organization's place is refused instead of served.
-- Tenant-owned data (devices, telemetry, audit log, …) arrives in later versions.

CREATE TABLE tenant_identity (
    org_id UUID PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);
