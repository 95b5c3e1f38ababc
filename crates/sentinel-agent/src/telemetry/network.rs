//! Network interfaces: byte counters from `/proc/net/dev`, addresses from `getifaddrs(3)`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use sentinel_protocol::telemetry::InterfaceStats;

/// The addresses of each interface, by interface name.
pub(super) type Addresses = BTreeMap<String, BTreeSet<IpAddr>>;

/// Each interface of the text of `/proc/net/dev` with its received and sent byte counts,
/// sorted by name, and without addresses yet. Lines that do not parse are left out.
pub(super) fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    let mut interfaces: Vec<InterfaceStats> = text
        .lines()
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            if name.is_empty() {
                return None;
            }
            let counters: Vec<&str> = counters.split_ascii_whitespace().collect();
            let counter = |index: usize| counters.get(index)?.parse().ok();
            Some(InterfaceStats {
                name: name.to_owned(),
                addresses: Vec::new(),
                rx_bytes: counter(0)?,
                tx_bytes: counter(8)?,
            })
        })
        .collect();
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    interfaces
}

/// The addresses of this host's interfaces, from `getifaddrs(3)`.
pub(super) fn host_addresses() -> nix::Result<Addresses> {
    let mut addresses = Addresses::new();
    for interface in nix::ifaddrs::getifaddrs()? {
        let Some(address) = interface.address else {
            continue;
        };
        let ip = match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
            (Some(v4), _) => IpAddr::V4(v4.ip()),
            (None, Some(v6)) => IpAddr::V6(v6.ip()),
            (None, None) => continue,
        };
        addresses
            .entry(interface.interface_name)
            .or_default()
            .insert(ip);
    }
    Ok(addresses)
}

/// Gives each interface its addresses.
pub(super) fn attach_addresses(interfaces: &mut [InterfaceStats], addresses: &Addresses) {
    for interface in interfaces {
        if let Some(ips) = addresses.get(&interface.name) {
            interface.addresses = ips.iter().map(IpAddr::to_string).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = concat!(
        "Inter-|   Receive                                                |  Transmit\n",
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets",
        " errs drop fifo colls carrier compressed\n",
        "  eth0: 1234567   9876    0    0    0     0          0         0   7654321    5432",
        "    0    0    0     0       0          0\n",
        "    lo:   42000    100    0    0    0     0          0         0     42000     100",
        "    0    0    0     0       0          0\n",
        "broken: 1 2 3\n",
        "wlan0:5 0 0 0 0 0 0 0 6 0 0 0 0 0 0 0\n",
    );

    #[test]
    fn counters_sorted_by_interface() {
        let interfaces = parse_net_dev(NET_DEV);
        let found: Vec<_> = interfaces
            .iter()
            .map(|i| (i.name.as_str(), i.rx_bytes, i.tx_bytes))
            .collect();
        assert_eq!(
            found,
            [
                ("eth0", 1234567, 7654321),
                ("lo", 42000, 42000),
                ("wlan0", 5, 6)
            ]
        );
    }

    #[test]
    fn addresses_are_attached_v4_first() {
        let mut interfaces = parse_net_dev(NET_DEV);
        let mut addresses = Addresses::new();
        let eth0 = addresses.entry("eth0".to_owned()).or_default();
        eth0.insert("fe80::1".parse().unwrap());
        eth0.insert("192.0.2.10".parse().unwrap());
        eth0.insert("2001:db8::10".parse().unwrap());
        addresses
            .entry("docker0".to_owned())
            .or_default()
            .insert("172.17.0.1".parse().unwrap());
        attach_addresses(&mut interfaces, &addresses);
        assert_eq!(
            interfaces[0].addresses,
            ["192.0.2.10", "2001:db8::10", "fe80::1"]
        );
        assert!(interfaces[1].addresses.is_empty());
        assert_eq!(interfaces.len(), 3);
    }
}
