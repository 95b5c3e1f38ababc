-- Tenant store, version 7: IoT uplinks from external network servers.
--
-- device_profiles hold an optional JavaScript payload decoder; lorawan_devices
-- gives a device its DevEUI (16 lower-case hex digits, unique in the
-- organization) and profile; integrations are the external MQTT brokers the
-- ingestion worker subscribes to (the password sealed under the master key);
-- device_events are the stored uplinks. An uplink that carries a ChirpStack
-- deduplication id is stored once per integration however often the broker
-- redelivers it.

CREATE TABLE device_profiles (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    decoder TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE lorawan_devices (
    device_id UUID PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    dev_eui TEXT NOT NULL UNIQUE,
    profile_id UUID REFERENCES device_profiles (id)
);

CREATE INDEX lorawan_devices_by_profile ON lorawan_devices (profile_id);

CREATE TABLE integrations (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    tls BOOLEAN NOT NULL,
    ca_pem TEXT,
    username TEXT,
    sealed_password BYTEA,
    topic TEXT NOT NULL,
    format TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE device_events (
    id UUID PRIMARY KEY,
    device_id UUID NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    received_at TIMESTAMPTZ NOT NULL,
    f_port INTEGER NOT NULL,
    payload BYTEA NOT NULL,
    decoded TEXT,
    decoder_error TEXT,
    integration_id UUID,
    dedup_id TEXT,
    UNIQUE (integration_id, dedup_id)
);

CREATE INDEX device_events_by_device ON device_events (device_id, id);
