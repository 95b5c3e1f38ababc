-- Control store, version 6: login lockout, service accounts and API tokens.

-- Consecutive failed logins and the lock they imposed (sentinel_core::lockout).
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until TIMESTAMPTZ;

-- A service account is a non-human user: no password that can ever verify,
-- a membership in exactly one organization, reachable only by API tokens.
ALTER TABLE users ADD COLUMN service_account BOOLEAN NOT NULL DEFAULT FALSE;

-- API tokens: the SHA-256 of the secret, the organization they are bound to,
-- whose authority they carry (owner: the creator, or a service account) and
-- the permissions they were granted (space-separated names), which are
-- intersected at every use with the current roles of owner and creator.
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    secret_hash BYTEA NOT NULL UNIQUE,
    name TEXT NOT NULL,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    creator_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permissions TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    last_used_ip TEXT
);

CREATE INDEX api_tokens_by_owner ON api_tokens (owner_id);
CREATE INDEX api_tokens_by_creator ON api_tokens (creator_id);
CREATE INDEX api_tokens_by_org ON api_tokens (org_id);
