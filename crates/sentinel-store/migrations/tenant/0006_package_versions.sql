-- Tenant store, version 6: the matcher's numbered package versions.
--
-- Devices of one organization share most of their package versions, so the
-- matcher numbers each distinct one (what advisories need of it: packaging
-- system, name, version, source name and version; '' when there is none) and
-- keeps each matched inventory as a list of those numbers (4 bytes each,
-- little-endian) instead of text: a feed change re-reads a fleet's inventories
-- as a few megabytes. Numbers are never reused; a version no inventory names
-- any more keeps its row.

CREATE TABLE package_versions (
    id BIGINT PRIMARY KEY,
    manager TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    source_name TEXT NOT NULL,
    source_version TEXT NOT NULL,
    UNIQUE (manager, name, version, source_name, source_version)
);

-- The text copies of version 5 are dropped: each device's inventory is read
-- once more at its next match and kept in the new form.
DROP TABLE matched_inventories;

CREATE TABLE matched_inventories (
    device_id UUID PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    inventory_digest TEXT NOT NULL,
    packages BYTEA NOT NULL
);
