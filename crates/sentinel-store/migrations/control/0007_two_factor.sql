-- Control store, version 7: two-factor authentication (TOTP).
--
-- A user has at most one TOTP enrolment: pending until they confirm it with a
-- code (enabled_at NULL), then on. The secret is sealed under the master key
-- (AES-256-GCM, bound to the user id), never stored in the clear. last_step is
-- the newest time step a code was accepted for: a code is only accepted for a
-- later step, checked in the UPDATE that records it, so a code works once.

CREATE TABLE user_two_factor (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    enrolment_id UUID NOT NULL,
    sealed_secret BYTEA NOT NULL,
    last_step BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    enabled_at TIMESTAMPTZ
);

-- Single-use recovery codes: a hash bound to the user, and when it was spent.

CREATE TABLE recovery_codes (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

-- A login whose password was right and whose second factor is awaited. The
-- client holds a 256-bit token; only its SHA-256 is kept. It is bound to the
-- password_changed_at seen when the password was checked, lives five minutes,
-- and allows a few attempts; it opens nothing but the second step of login.

CREATE TABLE login_challenges (
    token_hash BYTEA PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_checked_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX login_challenges_by_user ON login_challenges (user_id);
CREATE INDEX login_challenges_by_expiry ON login_challenges (expires_at);

-- Which members of an organization must use two-factor authentication.

ALTER TABLE organizations ADD COLUMN two_factor_policy TEXT NOT NULL DEFAULT 'none'
    CHECK (two_factor_policy IN ('none', 'admins', 'all'));
