-- Tenant store, version 5: vulnerability findings.
--
-- A finding is one advisory affecting one package on one device, as matched
-- against the platform's feeds. `matched_generation` and `matched_inventory` on a
-- device say which feed import and which inventory its findings reflect; a device
-- whose either differs from the current one is matched again; `findings_digest`
-- lets a re-match that finds what is already stored skip writing.
-- `matched_inventories` holds the matcher's compact copy of the inventory it
-- matched (what advisories need of each package), so that a feed change
-- re-matches without reading every inventory row again. It is a table of its
-- own so that updating a device row does not rewrite the copy.

ALTER TABLE devices ADD COLUMN matched_generation BIGINT;
ALTER TABLE devices ADD COLUMN matched_inventory TEXT;
ALTER TABLE devices ADD COLUMN findings_digest TEXT;

CREATE TABLE matched_inventories (
    device_id UUID PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    inventory_digest TEXT NOT NULL,
    packages TEXT NOT NULL
);

CREATE TABLE findings (
    device_id UUID NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    advisory_id TEXT NOT NULL,
    -- The name advisories use: the source package on Debian, Ubuntu and Alpine.
    package TEXT NOT NULL,
    -- The installed binary packages built from it (JSON array).
    binaries TEXT NOT NULL,
    installed_version TEXT NOT NULL,
    fixed_version TEXT,
    release TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'unknown')),
    severity_rank INTEGER NOT NULL,
    -- CVE and other ids of the advisory (JSON array).
    aliases TEXT NOT NULL,
    summary TEXT NOT NULL,
    kev_date_added TEXT,
    kev_due_date TEXT,
    first_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, advisory_id, package)
);

CREATE INDEX findings_by_advisory ON findings (advisory_id, device_id);
CREATE INDEX findings_by_package ON findings (package, device_id);
CREATE INDEX findings_by_kev_due ON findings (kev_due_date) WHERE kev_due_date IS NOT NULL;
