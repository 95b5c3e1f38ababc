//! Topic authorization by identity. Every device has one namespace,
//! `sentinel/{org_id}/devices/{device_id}/`, and inside it a fixed table:
//!
//! | topic | device may |
//! |---|---|
//! | `…/telemetry` | publish (a `TelemetryBatch`) |
//! | `…/inventory` | publish (an `InventoryReport`) |
//! | `…/results` | publish (a `ResultMessage`) |
//! | `…/events` | publish |
//! | `…/commands` | subscribe (signed commands arrive here) |
//!
//! Nothing else, and no wildcards: a topic is allowed only when it is
//! exactly one of these strings for the authenticated identity. The checks are
//! pure functions of (identity, topic), decided before any payload is read.

use sentinel_core::OrgId;
use sentinel_protocol::paths::mqtt_namespace;
use uuid::Uuid;

/// What a device publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Telemetry,
    Inventory,
    Results,
    Events,
}

impl Channel {
    const ALL: [Channel; 4] = [
        Channel::Telemetry,
        Channel::Inventory,
        Channel::Results,
        Channel::Events,
    ];

    pub fn leaf(self) -> &'static str {
        match self {
            Channel::Telemetry => "telemetry",
            Channel::Inventory => "inventory",
            Channel::Results => "results",
            Channel::Events => "events",
        }
    }
}

/// The leaf a device subscribes to.
pub const COMMANDS: &str = "commands";

/// Why a topic was refused (what the audit entry says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `+` or `#` anywhere.
    Wildcard,
    /// Not under `sentinel/{org}/devices/{device}/`.
    OutsideNamespace,
    /// Another organization's namespace.
    OtherOrganization,
    /// Another device's namespace in the same organization.
    OtherDevice,
    /// The device's own namespace, but not a topic it may use this way.
    NotPermitted,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Wildcard => "wildcard topic filters are not allowed",
            Refusal::OutsideNamespace => "outside the device namespace",
            Refusal::OtherOrganization => "another organization's topic",
            Refusal::OtherDevice => "another device's topic",
            Refusal::NotPermitted => "not a topic this device may use this way",
        }
    }
}

/// One device's namespace.
#[derive(Debug, Clone)]
pub struct DeviceTopics {
    org: OrgId,
    device: Uuid,
    /// `sentinel/{org}/devices/{device}/`
    prefix: String,
}

impl DeviceTopics {
    pub fn new(org: OrgId, device: Uuid) -> DeviceTopics {
        DeviceTopics {
            org,
            device,
            prefix: format!("{}/", mqtt_namespace(org.as_uuid(), device)),
        }
    }

    /// The topic commands are pushed on.
    pub fn commands(&self) -> String {
        format!("{}{COMMANDS}", self.prefix)
    }

    /// The topic of `channel`, as a device publishes it.
    pub fn topic(&self, channel: Channel) -> String {
        format!("{}{}", self.prefix, channel.leaf())
    }

    /// Which channel a publish to `topic` feeds, if this device may publish there.
    pub fn publish(&self, topic: &str) -> Result<Channel, Refusal> {
        let leaf = self.own_leaf(topic)?;
        Channel::ALL
            .into_iter()
            .find(|c| c.leaf() == leaf)
            .ok_or(Refusal::NotPermitted)
    }

    /// Whether this device may subscribe to `filter`.
    pub fn subscribe(&self, filter: &str) -> Result<(), Refusal> {
        if self.own_leaf(filter)? == COMMANDS {
            Ok(())
        } else {
            Err(Refusal::NotPermitted)
        }
    }

    /// The part after this device's prefix; otherwise why not.
    fn own_leaf<'t>(&self, topic: &'t str) -> Result<&'t str, Refusal> {
        if topic.contains(['+', '#']) {
            return Err(Refusal::Wildcard);
        }
        if let Some(leaf) = topic.strip_prefix(self.prefix.as_str()) {
            return Ok(leaf);
        }
        // Only to name the refusal: whose namespace was it?
        let mut parts = topic.split('/');
        let (Some("sentinel"), Some(org), Some("devices"), Some(device)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::OutsideNamespace);
        };
        match (org.parse::<OrgId>(), device.parse::<Uuid>()) {
            (Ok(o), _) if o != self.org => Err(Refusal::OtherOrganization),
            (Ok(_), Ok(d)) if d != self.device => Err(Refusal::OtherDevice),
            // Our own ids in another spelling (upper case, no hyphens): not
            // the namespace, which is spelled one way only.
            _ => Err(Refusal::OutsideNamespace),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_device_publishes_and_subscribes_only_in_its_own_namespace() {
        let (org, device) = (OrgId::random(), Uuid::new_v4());
        let topics = DeviceTopics::new(org, device);
        let own = |leaf: &str| format!("sentinel/{org}/devices/{device}/{leaf}");
        assert_eq!(topics.publish(&own("telemetry")), Ok(Channel::Telemetry));
        assert_eq!(topics.publish(&own("inventory")), Ok(Channel::Inventory));
        assert_eq!(topics.publish(&own("results")), Ok(Channel::Results));
        assert_eq!(topics.publish(&own("events")), Ok(Channel::Events));
        assert_eq!(topics.subscribe(&own("commands")), Ok(()));
        assert_eq!(topics.commands(), own("commands"));

        // Wrong direction, deeper or unknown leaves.
        for leaf in ["commands", "telemetry/x", "", "telemetry ", "status"] {
            assert_eq!(
                topics.publish(&own(leaf)),
                Err(Refusal::NotPermitted),
                "{leaf}"
            );
        }
        assert_eq!(
            topics.subscribe(&own("telemetry")),
            Err(Refusal::NotPermitted)
        );

        let other_device = Uuid::new_v4();
        let other_org = OrgId::random();
        assert_eq!(
            topics.publish(&format!("sentinel/{org}/devices/{other_device}/telemetry")),
            Err(Refusal::OtherDevice)
        );
        assert_eq!(
            topics.subscribe(&format!("sentinel/{org}/devices/{other_device}/commands")),
            Err(Refusal::OtherDevice)
        );
        assert_eq!(
            topics.publish(&format!("sentinel/{other_org}/devices/{device}/telemetry")),
            Err(Refusal::OtherOrganization)
        );
        for wildcard in [
            "sentinel/#".to_owned(),
            "#".to_owned(),
            format!("sentinel/{org}/devices/+/commands"),
            own("#"),
            own("+"),
        ] {
            assert_eq!(
                topics.subscribe(&wildcard),
                Err(Refusal::Wildcard),
                "{wildcard}"
            );
            assert_eq!(topics.publish(&wildcard), Err(Refusal::Wildcard));
        }
        for outside in [
            "telemetry".to_owned(),
            "$SYS/broker".to_owned(),
            format!("$share/g/sentinel/{org}/devices/{device}/commands"),
            format!(
                "sentinel/{}/devices/{device}/telemetry",
                org.to_string().to_uppercase()
            ),
            format!("sentinel/{org}/devices/{}/telemetry", device.simple()),
            format!("/sentinel/{org}/devices/{device}/telemetry"),
        ] {
            assert_eq!(
                topics.publish(&outside),
                Err(Refusal::OutsideNamespace),
                "{outside}"
            );
        }
    }
}
