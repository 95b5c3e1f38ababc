//! IoT uplinks in an organization's tenant store: device profiles with their
//! payload decoders, the LoRaWAN identity (DevEUI) of devices, the external MQTT
//! brokers (integrations) uplinks arrive from, and the stored uplinks (events).
//!
//! Members reach all of it through [`crate::TenantStore`]; the ingestion worker,
//! which acts for no member, reaches only what it needs through [`UplinkStore`].

mod events;
mod integrations;
mod profiles;
mod uplinks;

use sha2::{Digest, Sha256};

pub use events::{DeviceEvent, EventCursor};
pub use integrations::{
    Integration, IntegrationChange, IntegrationSettings, NewIntegration, PasswordChange,
};
pub use profiles::{DeviceProfile, LorawanDevice};
pub use uplinks::{NewUplinkEvent, UplinkDevice, UplinkStore};

/// Lower-case hex SHA-256 of a decoder's source, as `sentinel_decoders::code_hash`
/// computes it, to name a script version in audit entries.
pub(crate) fn code_hash(code: &str) -> String {
    sentinel_core::audit::hex(&Sha256::digest(code.as_bytes()))
}
