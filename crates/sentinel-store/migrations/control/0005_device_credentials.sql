-- Control store, version 5: the credentials devices present, which must be found
-- before anyone knows which organization they belong to. Everything else about a
-- device lives in its organization's tenant store.
--
-- An enrollment token is created by a member with devices.write and exchanged by
-- agents for device identities, at most max_uses times, until it expires or is
-- revoked. Only the SHA-256 of the secret is kept.

CREATE TABLE enrollment_tokens (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    secret_hash BYTEA NOT NULL UNIQUE,
    tags TEXT NOT NULL,
    max_uses BIGINT NOT NULL CHECK (max_uses > 0),
    uses BIGINT NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    created_by UUID,
    created_by_name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX enrollment_tokens_by_org ON enrollment_tokens (org_id, created_at);

-- A device's tokens: normally one; two while a rotation is under way (the new one
-- replaces the old at its first use). Revoking a device deletes its rows, so its
-- next request is refused.

CREATE TABLE device_credentials (
    secret_hash BYTEA PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    device_id UUID NOT NULL,
    generation BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX device_credentials_by_device ON device_credentials (device_id);
