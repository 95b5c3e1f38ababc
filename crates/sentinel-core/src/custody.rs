//! A device's telemetry as a hash chain — chain of custody: an exported history
//! (evidence in a stolen-device case) can be shown to be complete, in order and
//! unaltered since the server received it.
//!
//! Each link hashes the previous link's hash, its number, when the device took
//! the sample, when the server received it, and the sample as stored (JSON
//! text). The first link's predecessor is a hash of the device id, so a chain
//! cannot be passed off as another device's.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::Timestamp;

const GENESIS_TAG: &[u8] = b"sentinel-telemetry-genesis/v1";
const LINK_TAG: &[u8] = b"sentinel-telemetry/v1";

/// The predecessor of a device's first link.
pub fn genesis(device: Uuid) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(GENESIS_TAG);
    h.update(device.as_bytes());
    h.finalize().into()
}

/// The hash of one link.
pub fn link_hash(
    prev: &[u8],
    seq: i64,
    sampled_at: Timestamp,
    received_at: Timestamp,
    sample: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(LINK_TAG);
    h.update((prev.len() as u64).to_be_bytes());
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(sampled_at.unix_micros().to_be_bytes());
    h.update(received_at.unix_micros().to_be_bytes());
    h.update((sample.len() as u64).to_be_bytes());
    h.update(sample.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_and_the_device_change_the_hash() {
        let t = Timestamp::from_unix_seconds(1);
        let base = link_hash(&genesis(Uuid::nil()), 1, t, t, "{}");
        assert_ne!(base, link_hash(&genesis(Uuid::max()), 1, t, t, "{}"));
        assert_ne!(base, link_hash(&genesis(Uuid::nil()), 2, t, t, "{}"));
        assert_ne!(
            base,
            link_hash(
                &genesis(Uuid::nil()),
                1,
                t.plus(std::time::Duration::from_secs(1)),
                t,
                "{}"
            )
        );
        assert_ne!(base, link_hash(&genesis(Uuid::nil()), 1, t, t, "{ }"));
        assert_eq!(base, link_hash(&genesis(Uuid::nil()), 1, t, t, "{}"));
    }
}
