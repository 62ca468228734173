//! `[dns]`: which DNS queries of a JVM lineage look like exfiltration.

use std::net::IpAddr;

use super::{count_in, list, number, values, Source};
use crate::policy::raw::RawDns;
use crate::policy::{DnsPolicy, PolicyError};

pub(super) fn dns(
    raw: RawDns,
    base: &DnsPolicy,
    src: &Source<'_>,
) -> Result<DnsPolicy, PolicyError> {
    let resolvers = values(list(
        raw.resolvers,
        &base.resolvers,
        "dns.resolvers",
        src,
        check_resolver,
    )?);
    let max_label_len = count_in(
        raw.max_label_len,
        base.max_label_len,
        "dns.max_label_len",
        src,
        1..=63,
        " (63 is the longest label DNS allows, and turns the check off)",
    )?;
    let entropy_min_len = count_in(
        raw.entropy_min_len,
        base.entropy_min_len,
        "dns.entropy_min_len",
        src,
        1..=63,
        "; to turn the entropy check off, set dns.entropy_bits = 8.0",
    )?;
    let entropy_bits = number(
        raw.entropy_bits,
        base.entropy_bits,
        "dns.entropy_bits",
        src,
        |bits| {
            if (0.0..=8.0).contains(&bits) {
                Ok(bits)
            } else {
                Err(format!(
                    "{bits} is out of range; the entropy of text is 0.0 to 8.0 bits per \
                     character"
                ))
            }
        },
    )?;
    let allow_suffixes = values(list(
        raw.allow_suffixes,
        &base.allow_suffixes,
        "dns.allow_suffixes",
        src,
        check_suffix,
    )?);
    Ok(DnsPolicy {
        resolvers,
        max_label_len,
        entropy_min_len,
        entropy_bits,
        allow_suffixes,
    })
}

/// Stored in canonical form: an IPv4-mapped IPv6 address becomes the IPv4 address.
pub(super) fn check_resolver(text: &str) -> Result<IpAddr, String> {
    match text.parse::<IpAddr>() {
        Ok(ip) => Ok(ip.to_canonical()),
        Err(_) if text.contains('/') => Err(format!(
            "{text:?} is a network; list each DNS server by its address"
        )),
        Err(_) => Err(format!(
            "{text:?} is not an IP address; list each DNS server by its address \
             (\"10.0.0.2\", \"fd00::53\")"
        )),
    }
}

/// Lower case, without a leading or trailing dot: "svc.cluster.local" matches itself and every
/// name that ends with ".svc.cluster.local".
pub(super) fn check_suffix(suffix: &str) -> Result<String, String> {
    let lower = suffix.to_ascii_lowercase();
    let bare = lower.strip_prefix('.').unwrap_or(&lower);
    let bare = bare.strip_suffix('.').unwrap_or(bare);
    if bare.is_empty() {
        return Err(format!(
            "{suffix:?} would match every name; a suffix must not be empty"
        ));
    }
    let domain_chars = bare
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !domain_chars || bare.split('.').any(str::is_empty) {
        return Err(format!(
            "{suffix:?} is not a domain name; write the domain itself (\"svc.cluster.local\"), \
             which also matches every name below it"
        ));
    }
    Ok(bare.to_owned())
}
