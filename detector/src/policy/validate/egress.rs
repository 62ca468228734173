//! `[egress]`: where a JVM lineage may connect to, within what the kernel's allowlist holds.

use std::ops::Range;

use detector_common::ALLOW_PORTS;
use toml::Spanned;

use super::{list, one_list_per_value, rule_app, values, Source};
use crate::policy::raw::{RawEgress, RawNetAllow, SpannedPorts};
use crate::policy::{Cidr, EgressPolicy, KernelAllowError, NetAllowRule, PolicyError};

pub(super) fn egress(
    raw: RawEgress,
    base: &EgressPolicy,
    src: &Source<'_>,
) -> Result<EgressPolicy, PolicyError> {
    let ldap_ports = list(
        raw.ldap_ports,
        &base.ldap_ports,
        "egress.ldap_ports",
        src,
        check_port,
    )?;
    let rmi_ports = list(
        raw.rmi_ports,
        &base.rmi_ports,
        "egress.rmi_ports",
        src,
        check_port,
    )?;
    let dns_ports = list(
        raw.dns_ports,
        &base.dns_ports,
        "egress.dns_ports",
        src,
        check_port,
    )?;
    // The kernel gives a port one class; a port in two lists would make it depend on load
    // order.
    one_list_per_value(
        [
            ("egress.ldap_ports", &ldap_ports),
            ("egress.rmi_ports", &rmi_ports),
            ("egress.dns_ports", &dns_ports),
        ],
        src,
        |port| format!("port {port}"),
        "a port is recognised as one protocol only",
    )?;

    // A list the file sets replaces the base policy's rules, as every list does.
    let (allow, rule_spans) = match raw.allow {
        None => (base.allow.clone(), None),
        Some(rules) => {
            let ports_spans: Vec<_> = rules
                .iter()
                .map(|rule| rule.get_ref().ports.as_ref().map(Spanned::span))
                .collect();
            let rules = rules
                .into_iter()
                .enumerate()
                .map(|(i, rule)| net_allow_rule(i, rule, src))
                .collect::<Result<_, _>>()?;
            (rules, Some(ports_spans))
        }
    };

    let policy = EgressPolicy {
        ldap_ports: values(ldap_ports),
        rmi_ports: values(rmi_ports),
        dns_ports: values(dns_ports),
        block_ldap_rmi: raw.block_ldap_rmi.unwrap_or(base.block_ldap_rmi),
        block_unexpected: raw.block_unexpected.unwrap_or(base.block_unexpected),
        quarantine: raw.quarantine.unwrap_or(base.quarantine),
        report_unexpected: raw.report_unexpected.unwrap_or(base.report_unexpected),
        allow,
    };
    if let Some(ports_spans) = rule_spans {
        kernel_fit(&policy, &ports_spans, src)?;
    }
    Ok(policy)
}

/// One `[[egress.allow]]` rule, the `index`th in the file.
pub(super) fn net_allow_rule(
    index: usize,
    rule: Spanned<RawNetAllow>,
    src: &Source<'_>,
) -> Result<NetAllowRule, PolicyError> {
    let rule_span = rule.span();
    let RawNetAllow {
        app,
        cidrs,
        ports,
        reason,
    } = rule.into_inner();
    let key = |field: &str| format!("egress.allow[{index}].{field}");

    let app = rule_app(app, &key("app"), src)?;

    let Some(cidrs) = cidrs else {
        return Err(src.invalid(
            &rule_span,
            &key("cidrs"),
            "missing; every allow rule lists the networks it allows (\"10.0.0.5\", \
             \"10.0.0.0/8\", \"fd00::/8\")"
                .to_owned(),
        ));
    };
    if cidrs.get_ref().is_empty() {
        return Err(src.invalid(
            &cidrs.span(),
            &key("cidrs"),
            "must list at least one network".to_owned(),
        ));
    }
    let cidrs = values(list(Some(cidrs), &[], &key("cidrs"), src, check_cidr)?);

    let ports = match ports {
        None => None,
        Some(ports) => Some(allow_ports(ports, &key("ports"), src)?),
    };

    Ok(NetAllowRule {
        app,
        cidrs,
        ports,
        reason,
    })
}

/// The `ports` of an allow rule: 1 to [`ALLOW_PORTS`] distinct ports, sorted.
pub(super) fn allow_ports(
    raw: SpannedPorts,
    key: &str,
    src: &Source<'_>,
) -> Result<Vec<u16>, PolicyError> {
    let span = raw.span();
    if raw.get_ref().is_empty() {
        return Err(src.invalid(
            &span,
            key,
            "must list at least one port; leave `ports` out to allow any port but the LDAP \
             and RMI ones"
                .to_owned(),
        ));
    }
    let mut ports = values(list(Some(raw), &[], key, src, check_port)?);
    ports.sort_unstable();
    ports.dedup();
    if ports.len() > ALLOW_PORTS {
        return Err(src.invalid(
            &span,
            key,
            format!(
                "lists {} ports; a kernel allowlist entry holds at most {ALLOW_PORTS}: leave \
                 `ports` out to allow any port but the LDAP and RMI ones, or narrow the rule",
                ports.len()
            ),
        ));
    }
    Ok(ports)
}

/// The rules the file sets must fit the kernel's trie: for every JVM, and for every JVM an
/// `app` rule applies to. Such a JVM gets the rules whose `app` is in its command line, so at
/// least those whose `app` is part of this rule's `app`: their union is checked here. Other
/// combinations (two unrelated `app` values that both occur in one command line) are only
/// known when that JVM starts, and the daemon reports them then.
///
/// `ports_spans` holds, per rule, the span of its `ports` when it has them.
pub(super) fn kernel_fit(
    policy: &EgressPolicy,
    ports_spans: &[Option<Range<usize>>],
    src: &Source<'_>,
) -> Result<(), PolicyError> {
    let apps = policy.allow.iter().filter_map(|rule| rule.app.as_deref());
    let scopes = std::iter::once(None).chain(apps.map(Some));
    for app in scopes {
        let Err(err) = policy.allow_unions(app) else {
            continue;
        };
        let KernelAllowError::TooManyPorts { rules, .. } = &err;
        // Point at the last rule that adds ports: the one that tipped it over.
        let at = rules
            .iter()
            .rev()
            .find_map(|&i| ports_spans.get(i).cloned().flatten().map(|span| (i, span)));
        let Some((index, span)) = at else {
            // Only rules with ports add ports, and every rule here came from the file.
            continue;
        };
        let message = match app {
            None => err.to_string(),
            Some(app) => format!("in a JVM whose command line contains {app:?}: {err}"),
        };
        return Err(src.invalid(&span, &format!("egress.allow[{index}].ports"), message));
    }
    Ok(())
}

pub(super) fn check_port(port: &i64) -> Result<u16, String> {
    u16::try_from(*port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("{port} is not a port number; ports are 1 to 65535"))
}

pub(super) fn check_cidr(text: &str) -> Result<Cidr, String> {
    Cidr::parse(text).map_err(|err| err.to_string())
}
