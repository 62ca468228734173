//! IP networks as the kernel's `NET_ALLOW` trie keys them: every address is 16 bytes, IPv4 as
//! an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), so one trie and one comparison serve both
//! families. An IPv4 network `/n` is the IPv6 network `::ffff:a.b.c.d/(96 + n)`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv6Net};

use super::error::CidrError;

/// Prefix bits of the IPv4-mapped range `::ffff:0:0/96`.
const V4_MAPPED_BITS: u8 = 96;

/// An IPv4 or IPv6 network, such as `10.0.0.0/8` or `fd00::/8`, with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The network: IPv6, or IPv4-mapped (`::ffff:a.b.c.d/(96 + n)`) for IPv4; its prefix
    /// length is in IPv6 terms, 0..=128: an IPv4 `/24` is 120.
    net: Ipv6Net,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8`, or a bare address (`10.0.0.5` is `/32`, `fd00::1` is
    /// `/128`). IPv4-mapped IPv6 networks (`::ffff:10.0.0.0/104`) are IPv4 networks.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        // Split here rather than with `IpNet::from_str`: a bare address is a host network,
        // and each part has its own error.
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return Err(CidrError::Address {
                text: text.to_owned(),
            });
        };
        let max = match ip {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let bad_prefix = || CidrError::Prefix {
            text: text.to_owned(),
            max,
        };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would take "+8".
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad_prefix())?
            }
            Some(_) => return Err(bad_prefix()),
        };
        let net = IpNet::new(ip, prefix).map_err(|_| bad_prefix())?;
        let cidr = Cidr::from_net(net.trunc());
        if net.network() != ip {
            return Err(CidrError::HostBits {
                text: text.to_owned(),
                network: cidr,
            });
        }
        Ok(cidr)
    }

    /// The network of one address (`/32` or `/128`).
    pub fn host(ip: IpAddr) -> Cidr {
        Cidr::from_net(IpNet::from(ip))
    }

    /// `net` as the kernel keys it: IPv4 as its IPv4-mapped IPv6 network.
    fn from_net(net: IpNet) -> Cidr {
        let net = match net {
            IpNet::V4(v4) => Ipv6Net::new_assert(
                v4.network().to_ipv6_mapped(),
                V4_MAPPED_BITS + v4.prefix_len(),
            ),
            IpNet::V6(v6) => v6,
        };
        Cidr { net }
    }

    /// The network address, 16 bytes (IPv4-mapped for IPv4), as the kernel keys it.
    pub fn addr(&self) -> [u8; 16] {
        self.net.network().octets()
    }

    /// The prefix length in IPv6 terms (0..=128; an IPv4 `/24` is 120), as the kernel keys it.
    pub fn prefix(&self) -> u8 {
        self.net.prefix_len()
    }

    /// Whether this is an IPv4 network: it lies inside `::ffff:0:0/96`.
    pub fn is_v4(&self) -> bool {
        v4_mapped().contains(&self.net)
    }

    /// Whether `ip` is in the network. An IPv4 address and its IPv4-mapped IPv6 form
    /// (`::ffff:a.b.c.d`) are the same address here.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.net.contains(&Ipv6Addr::from(to_bytes(*ip)))
    }

    /// Whether every address of `other` is in this network.
    pub fn covers(&self, other: &Cidr) -> bool {
        self.net.contains(&other.net)
    }
}

impl fmt::Display for Cidr {
    /// `10.0.0.0/8` for IPv4 networks, `fd00::/8` for the others.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.net.network().to_ipv4_mapped() {
            Some(v4) if self.is_v4() => {
                write!(f, "{v4}/{}", self.net.prefix_len() - V4_MAPPED_BITS)
            }
            _ => write!(f, "{}", self.net),
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse(s)
    }
}

/// `::ffff:0:0/96`, where IPv4 addresses live in the kernel's keys.
fn v4_mapped() -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), V4_MAPPED_BITS)
}

/// The 16 bytes the kernel sees for `ip`: IPv4 as `::ffff:a.b.c.d`.
fn to_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        Cidr::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn parses_v4_v6_and_bare_addresses() {
        let net = cidr("10.0.0.0/8");
        assert!(net.is_v4());
        assert_eq!(net.prefix(), 104);
        assert_eq!(net.addr(), to_bytes(ip("10.0.0.0")));
        assert_eq!(net.to_string(), "10.0.0.0/8");

        let host = cidr("10.0.0.5");
        assert_eq!(host.prefix(), 128);
        assert_eq!(host.to_string(), "10.0.0.5/32");

        let v6 = cidr("fd00::/8");
        assert!(!v6.is_v4());
        assert_eq!(v6.prefix(), 8);
        assert_eq!(v6.to_string(), "fd00::/8");
        assert_eq!(cidr("::1").to_string(), "::1/128");
        assert_eq!(cidr("::/0").to_string(), "::/0");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(
            "192.168.1.0/24".parse::<Cidr>().ok(),
            Some(cidr("192.168.1.0/24"))
        );
    }

    #[test]
    fn v4_mapped_networks_are_v4() {
        let mapped = cidr("::ffff:10.0.0.0/104");
        assert!(mapped.is_v4());
        assert_eq!(mapped, cidr("10.0.0.0/8"));
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
        assert_eq!(cidr("::ffff:10.0.0.5").to_string(), "10.0.0.5/32");
        // Wider than the mapped range: an IPv6 network, although it covers all of IPv4.
        assert!(!cidr("::/80").is_v4());
    }

    #[test]
    fn rejects_bad_text_prefixes_and_host_bits() {
        for text in [
            "",
            "10.0.0",
            "10.0.0.0/",
            "host.example",
            "10.0.0.0/8/8",
            "fe80::1%eth0",
        ] {
            assert!(
                matches!(
                    Cidr::parse(text),
                    Err(CidrError::Address { .. } | CidrError::Prefix { .. })
                ),
                "{text:?}"
            );
        }
        for text in [
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "fd00::/129",
            "10.0.0.0/x",
        ] {
            assert!(
                matches!(Cidr::parse(text), Err(CidrError::Prefix { .. })),
                "{text:?}"
            );
        }
        assert_eq!(
            Cidr::parse("10.0.0.5/8").map_err(|e| e.to_string()),
            Err("\"10.0.0.5/8\" has host bits set; did you mean \"10.0.0.0/8\"?".to_owned())
        );
        assert_eq!(
            Cidr::parse("fd00::1/8").map_err(|e| e.to_string()),
            Err("\"fd00::1/8\" has host bits set; did you mean \"fd00::/8\"?".to_owned())
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/40").map_err(|e| e.to_string()),
            Err("\"10.0.0.0/40\": the prefix length must be a number from 0 to 32".to_owned())
        );
    }

    #[test]
    fn contains_addresses_of_either_form() {
        let net = cidr("10.0.0.0/8");
        assert!(net.contains(&ip("10.1.2.3")));
        assert!(net.contains(&ip("::ffff:10.1.2.3")));
        assert!(!net.contains(&ip("11.0.0.1")));
        assert!(!net.contains(&ip("fd00::1")));
        // A prefix that does not end on a byte boundary.
        let odd = cidr("172.16.0.0/12");
        assert!(odd.contains(&ip("172.31.255.255")));
        assert!(!odd.contains(&ip("172.32.0.0")));

        let v6 = cidr("fd00::/8");
        assert!(v6.contains(&ip("fd12:3456::1")));
        assert!(!v6.contains(&ip("fe80::1")));
        assert!(!v6.contains(&ip("10.0.0.1")));

        // Everything, in either family's spelling of "everything".
        assert!(cidr("0.0.0.0/0").contains(&ip("8.8.8.8")));
        assert!(!cidr("0.0.0.0/0").contains(&ip("2001:db8::1")));
        assert!(cidr("::/0").contains(&ip("2001:db8::1")));
        // The kernel stores IPv4 in ::ffff:0:0/96, so an IPv6 network around it covers IPv4.
        assert!(cidr("::/0").contains(&ip("8.8.8.8")));
    }

    #[test]
    fn covers_nested_networks() {
        let wide = cidr("10.0.0.0/8");
        assert!(wide.covers(&cidr("10.0.0.5/32")));
        assert!(wide.covers(&wide));
        assert!(!cidr("10.0.0.5/32").covers(&wide));
        assert!(!wide.covers(&cidr("11.0.0.0/8")));
        assert!(cidr("::/0").covers(&wide));
        assert!(!cidr("fd00::/8").covers(&wide));
    }
}
