-- Control store, version 8: vulnerability feeds, platform data shared (read-only)
-- by every organization.
--
-- Each import of a feed file is recorded; `seq` numbers them, and every advisory
-- and KEV entry carries the seq of the import that last changed it, so a server
-- can load what changed since the last import it saw. An advisory's `record` is
-- its OSV JSON as imported; withdrawn advisories are kept (withdrawn = TRUE) so
-- that an older copy imported later cannot bring them back.

CREATE TABLE feed_imports (
    id UUID PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('osv', 'kev')),
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL,
    imported_by TEXT NOT NULL,
    records BIGINT NOT NULL,
    added BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    withdrawn BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    malformed BIGINT NOT NULL
);

CREATE INDEX feed_imports_by_digest ON feed_imports (sha256);

CREATE TABLE advisories (
    id TEXT PRIMARY KEY,
    modified TEXT NOT NULL,
    withdrawn BOOLEAN NOT NULL,
    record TEXT NOT NULL,
    import_seq BIGINT NOT NULL
);

CREATE INDEX advisories_by_import ON advisories (import_seq);

CREATE TABLE kev_entries (
    cve_id TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    import_seq BIGINT NOT NULL
);

-- The catalog the KEV entries come from (one row).
CREATE TABLE kev_catalog (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    catalog_version TEXT NOT NULL,
    date_released TEXT NOT NULL,
    import_seq BIGINT NOT NULL
);
