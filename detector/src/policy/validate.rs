//! From the file as written (`raw`) to a [`Policy`]: checks every value the file sets, normalises
//! it, and takes the base policy's value for every key the file leaves out.
//!
//! The limits are those of the kernel maps the daemon loads the policy into
//! (`detector-common`): basenames are NUL-padded keys of [`NAME_LEN`] bytes, paths are read into
//! [`PATH_LEN`] bytes, and directory prefixes are keys of [`PREFIX_LEN`] bytes. A value that
//! does not fit would be cut and silently match something else, so it is an error here. The
//! egress allowlist goes into an LPM trie whose entries hold [`ALLOW_PORTS`] ports each.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use detector_common::{ALLOW_PORTS, COMM_LEN, NAME_LEN, PATH_LEN, PREFIX_LEN};
use toml::Spanned;

use super::cidr::Cidr;
use super::error::{KernelAllowError, PolicyError};
use super::raw::{
    RawAllow, RawDelivery, RawDns, RawEgress, RawExec, RawJvm, RawNetAllow, RawPolicy, RawSink,
    SpannedPorts,
};
use super::{
    locate, DeliveryOverrides, DeliveryPolicy, DnsPolicy, EgressPolicy, ExecAllow, ExecPolicy,
    JvmPolicy, NetAllowRule, Policy, ResponsePolicy, SecretRef, SecretSource, SinkDelivery,
    SinkPolicy, SinkTarget, SinkType,
};
use crate::vocab::{Rule, Severity};

/// Longest basename a kernel name key holds (it keeps a terminating NUL).
const MAX_NAME: usize = NAME_LEN - 1;
/// Longest process name (`comm`) the kernel keeps.
const MAX_COMM: usize = COMM_LEN - 1;
/// Longest path the kernel reads (it keeps a terminating NUL).
const MAX_PATH: usize = PATH_LEN - 1;
/// Longest directory, before its trailing '/', that fits a prefix key with a terminating NUL.
const MAX_DIR: usize = PREFIX_LEN - 2;

/// Checks `raw`, read from `text` (named `origin` in errors), and fills what it leaves out from
/// `base`.
pub(super) fn validate(
    raw: RawPolicy,
    base: &Policy,
    text: &str,
    origin: &Path,
) -> Result<Policy, PolicyError> {
    let src = Source { text, origin };
    Ok(Policy {
        mode: raw.mode.unwrap_or(base.mode),
        jvm: jvm(raw.jvm, &base.jvm, &src)?,
        response: ResponsePolicy {
            kill_jvm: raw.response.kill_jvm.unwrap_or(base.response.kill_jvm),
            on_chain: raw.response.on_chain.unwrap_or(base.response.on_chain),
        },
        exec: exec(raw.exec, &base.exec, &src)?,
        egress: egress(raw.egress, &base.egress, &src)?,
        dns: dns(raw.dns, &base.dns, &src)?,
        delivery: delivery(raw.delivery, &base.delivery, &src)?,
        sinks: sinks(raw.sinks, &base.sinks, &src)?,
    })
}

/// The text being validated, to turn spans into located errors.
struct Source<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl Source<'_> {
    fn invalid(&self, span: &Range<usize>, key: &str, message: String) -> PolicyError {
        PolicyError::Invalid {
            path: self.origin.to_owned(),
            line: locate::line(self.text, span.start),
            key: key.to_owned(),
            message,
        }
    }
}

/// A list entry after its check: its normalised value, and its span when the file set it
/// (`None` when it came from the base policy).
type Entry<T = String> = (T, Option<Range<usize>>);

/// Checks every entry of a list the file sets with `check` (which returns the normalised
/// value or what is wrong), or takes `base` when the file leaves the list out.
fn list<R, Q, T>(
    raw: Option<Spanned<Vec<Spanned<R>>>>,
    base: &[T],
    key: &str,
    src: &Source<'_>,
    check: impl Fn(&Q) -> Result<T, String>,
) -> Result<Vec<Entry<T>>, PolicyError>
where
    R: Borrow<Q>,
    Q: ?Sized,
    T: Clone,
{
    let Some(raw) = raw else {
        return Ok(base.iter().map(|v| (v.clone(), None)).collect());
    };
    raw.into_inner()
        .into_iter()
        .map(|item| {
            let span = item.span();
            check(item.get_ref().borrow())
                .map(|value| (value, Some(span.clone())))
                .map_err(|message| src.invalid(&span, key, message))
        })
        .collect()
}

fn values<T>(entries: Vec<Entry<T>>) -> Vec<T> {
    entries.into_iter().map(|(value, _)| value).collect()
}

/// A number the file sets, checked with `check`, or `base` when the file leaves it out.
fn number<T: Copy>(
    raw: Option<Spanned<T>>,
    base: T,
    key: &str,
    src: &Source<'_>,
    check: impl Fn(T) -> Result<T, String>,
) -> Result<T, PolicyError> {
    match raw {
        None => Ok(base),
        Some(value) => {
            check(*value.get_ref()).map_err(|message| src.invalid(&value.span(), key, message))
        }
    }
}

/// A count the file sets, which must lie in `range`, or `base` when the file leaves it out.
fn count_in(
    raw: Option<Spanned<i64>>,
    base: usize,
    key: &str,
    src: &Source<'_>,
    range: RangeInclusive<i64>,
    why: &str,
) -> Result<usize, PolicyError> {
    let base = i64::try_from(base).unwrap_or(i64::MAX);
    let value = number(raw, base, key, src, |n| {
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "{n} is out of range; it must be {} to {}{why}",
                range.start(),
                range.end()
            ))
        }
    })?;
    // In range, and the range is of small positive numbers.
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

// === [jvm] ===

fn jvm(raw: RawJvm, base: &JvmPolicy, src: &Source<'_>) -> Result<JvmPolicy, PolicyError> {
    // Where to point if both lists end up empty: whichever of them the file set.
    let empty_at = [
        ("jvm.launchers", raw.launchers.as_ref().map(Spanned::span)),
        (
            "jvm.launcher_paths",
            raw.launcher_paths.as_ref().map(Spanned::span),
        ),
    ];
    let launchers = values(list(
        raw.launchers,
        &base.launchers,
        "jvm.launchers",
        src,
        check_launcher_name,
    )?);
    let launcher_paths = values(list(
        raw.launcher_paths,
        &base.launcher_paths,
        "jvm.launcher_paths",
        src,
        check_launcher_path,
    )?);
    if launchers.is_empty() && launcher_paths.is_empty() {
        // The base policy always names a launcher, so one of the two was set by the file.
        if let Some((key, Some(span))) = empty_at.iter().find(|(_, span)| span.is_some()) {
            return Err(src.invalid(
                span,
                key,
                "jvm.launchers and jvm.launcher_paths are both empty, so no JVM would ever be \
                 watched; name at least one launcher"
                    .to_owned(),
            ));
        }
    }
    Ok(JvmPolicy {
        launchers,
        launcher_paths,
    })
}

// === [exec] ===

fn exec(raw: RawExec, base: &ExecPolicy, src: &Source<'_>) -> Result<ExecPolicy, PolicyError> {
    let shells = list(
        raw.shells,
        &base.shells,
        "exec.shells",
        src,
        check_class_name,
    )?;
    let interpreters = list(
        raw.interpreters,
        &base.interpreters,
        "exec.interpreters",
        src,
        check_class_name,
    )?;
    let downloaders = list(
        raw.downloaders,
        &base.downloaders,
        "exec.downloaders",
        src,
        check_class_name,
    )?;
    one_class_per_name(
        [
            ("exec.shells", &shells),
            ("exec.interpreters", &interpreters),
            ("exec.downloaders", &downloaders),
        ],
        src,
    )?;
    let writable_dirs = list(
        raw.writable_dirs,
        &base.writable_dirs,
        "exec.writable_dirs",
        src,
        check_writable_dir,
    )?;
    let allow = raw
        .allow
        .into_iter()
        .enumerate()
        .map(|(i, rule)| allow_rule(i, rule, src))
        .collect::<Result<_, _>>()?;
    Ok(ExecPolicy {
        shells: values(shells),
        interpreters: values(interpreters),
        downloaders: values(downloaders),
        writable_dirs: values(writable_dirs),
        memfd: raw.memfd.unwrap_or(base.memfd),
        allow,
    })
}

/// A name in two classes would make the kernel's class map depend on load order, so it is an
/// error naming both lists. A name twice in one list is harmless and allowed.
fn one_class_per_name(
    classes: [(&'static str, &[Entry]); 3],
    src: &Source<'_>,
) -> Result<(), PolicyError> {
    one_list_per_value(
        classes,
        src,
        |name| format!("{name:?}"),
        "a name belongs to one class only",
    )
}

/// A value in two of `lists` is an error naming both lists, at whichever of the two the file
/// set; `describe` names the value and `rule` says why it may be in one list only. A value
/// twice in one list is harmless and allowed.
fn one_list_per_value<T: Eq + Hash>(
    lists: [(&'static str, &[Entry<T>]); 3],
    src: &Source<'_>,
    describe: impl Fn(&T) -> String,
    rule: &str,
) -> Result<(), PolicyError> {
    let mut seen: HashMap<&T, (&'static str, &Option<Range<usize>>)> = HashMap::new();
    for (key, entries) in lists {
        for (value, span) in entries.iter() {
            let Some(&(first_key, first_span)) = seen.get(value) else {
                seen.insert(value, (key, span));
                continue;
            };
            if first_key == key {
                continue;
            }
            // Point at whichever of the two the file set, and say where the other came from.
            // Two entries from the base policy never clash: it was validated itself.
            let (at_key, at_span, other_key, other_span) = match (span, first_span) {
                (Some(at), other) => (key, at, first_key, other),
                (None, Some(at)) => (first_key, at, key, span),
                (None, None) => continue,
            };
            let from = if other_span.is_some() {
                ""
            } else {
                " (the built-in list)"
            };
            return Err(src.invalid(
                at_span,
                at_key,
                format!(
                    "{} is also in {other_key}{from}; {rule}, so remove it from one of the two \
                     lists",
                    describe(value)
                ),
            ));
        }
    }
    Ok(())
}

/// The `app` of an allow rule (exec or egress): absent means every JVM, empty is a mistake.
fn rule_app(
    app: Option<Spanned<String>>,
    key: &str,
    src: &Source<'_>,
) -> Result<Option<String>, PolicyError> {
    match app {
        Some(app) if app.get_ref().is_empty() => Err(src.invalid(
            &app.span(),
            key,
            "must not be empty; leave `app` out to apply the rule to every JVM".to_owned(),
        )),
        app => Ok(app.map(Spanned::into_inner)),
    }
}

/// One `[[exec.allow]]` rule, the `index`th in the file.
fn allow_rule(
    index: usize,
    rule: Spanned<RawAllow>,
    src: &Source<'_>,
) -> Result<ExecAllow, PolicyError> {
    let rule_span = rule.span();
    let RawAllow {
        app,
        programs,
        reason,
    } = rule.into_inner();
    let key = |field: &str| format!("exec.allow[{index}].{field}");

    let app = rule_app(app, &key("app"), src)?;

    let Some(programs) = programs else {
        return Err(src.invalid(
            &rule_span,
            &key("programs"),
            "missing; every allow rule lists the programs it allows".to_owned(),
        ));
    };
    if programs.get_ref().is_empty() {
        return Err(src.invalid(
            &programs.span(),
            &key("programs"),
            "must list at least one program".to_owned(),
        ));
    }
    let programs = values(list(
        Some(programs),
        &[],
        &key("programs"),
        src,
        check_allowed_program,
    )?);

    Ok(ExecAllow {
        app,
        programs,
        reason,
    })
}

// === [egress] ===

fn egress(
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
fn net_allow_rule(
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
fn allow_ports(raw: SpannedPorts, key: &str, src: &Source<'_>) -> Result<Vec<u16>, PolicyError> {
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
fn kernel_fit(
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

// === [dns] ===

fn dns(raw: RawDns, base: &DnsPolicy, src: &Source<'_>) -> Result<DnsPolicy, PolicyError> {
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

// === [delivery] and [[sinks]] ===

/// PagerDuty's Events API v2 endpoint, when a `pagerduty` sink gives no `url`.
pub(super) const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Where a `syslog` sink sends, when it gives no `socket`.
const SYSLOG_SOCKET: &str = "/dev/log";

/// The rotation size and the rotated files kept of a `file` sink that does not say.
const FILE_MAX_BYTES: u64 = 100 * 1024 * 1024;
const FILE_KEEP: u32 = 5;

/// Headers the detector sets itself on a webhook request; a `headers` entry may not replace
/// them (a replaced signature or idempotency key would break what receivers rely on).
const RESERVED_HEADERS: [&str; 8] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "user-agent",
    "idempotency-key",
    "x-detector-signature",
];

/// The RFC 5424 facilities a `syslog` sink may use, with their codes.
const FACILITIES: [(&str, u8); 12] = [
    ("user", 1),
    ("daemon", 3),
    ("auth", 4),
    ("authpriv", 10),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The keys each sink type has besides `type`, `name`, `min_severity` and `rules`.
fn sink_keys(kind: SinkType) -> &'static [&'static str] {
    const HTTP_DELIVERY: [&str; 5] = [
        "timeout",
        "give_up_after",
        "queue",
        "rate_per_minute",
        "dedup_window",
    ];
    match kind {
        SinkType::Stdout => &[],
        SinkType::File => &["path", "max_bytes", "keep", "give_up_after", "queue"],
        SinkType::Webhook => &[
            "url",
            "headers",
            "hmac_key_env",
            "hmac_key_file",
            HTTP_DELIVERY[0],
            HTTP_DELIVERY[1],
            HTTP_DELIVERY[2],
            HTTP_DELIVERY[3],
            HTTP_DELIVERY[4],
        ],
        SinkType::PagerDuty => &[
            "routing_key_env",
            "routing_key_file",
            "url",
            HTTP_DELIVERY[0],
            HTTP_DELIVERY[1],
            HTTP_DELIVERY[2],
            HTTP_DELIVERY[3],
            HTTP_DELIVERY[4],
        ],
        SinkType::Slack => &[
            "webhook_url_env",
            "webhook_url_file",
            HTTP_DELIVERY[0],
            HTTP_DELIVERY[1],
            HTTP_DELIVERY[2],
            HTTP_DELIVERY[3],
            HTTP_DELIVERY[4],
        ],
        SinkType::Alertmanager => &[
            "url",
            HTTP_DELIVERY[0],
            HTTP_DELIVERY[1],
            HTTP_DELIVERY[2],
            HTTP_DELIVERY[3],
            HTTP_DELIVERY[4],
        ],
        SinkType::Syslog => &[
            "socket",
            "facility",
            "give_up_after",
            "queue",
            "rate_per_minute",
            "dedup_window",
        ],
    }
}

fn delivery(
    raw: RawDelivery,
    base: &DeliveryPolicy,
    src: &Source<'_>,
) -> Result<DeliveryPolicy, PolicyError> {
    let spool_dir = match raw.spool_dir {
        None => base.spool_dir.clone(),
        Some(dir) => check_absolute(dir.get_ref())
            .map_err(|m| src.invalid(&dir.span(), "delivery.spool_dir", m))?,
    };
    let keys = delivery_keys(
        "delivery",
        DeliveryKeys {
            timeout: raw.timeout,
            give_up_after: raw.give_up_after,
            queue: raw.queue,
            rate_per_minute: raw.rate_per_minute,
            dedup_window: raw.dedup_window,
        },
        src,
    )?;
    let d = &base.defaults;
    Ok(DeliveryPolicy {
        spool_dir,
        defaults: SinkDelivery {
            timeout: keys.timeout.unwrap_or(d.timeout),
            give_up_after: keys.give_up_after.unwrap_or(d.give_up_after),
            queue: keys.queue.unwrap_or(d.queue),
            rate_per_minute: keys.rate_per_minute.unwrap_or(d.rate_per_minute),
            dedup_window: keys.dedup_window.unwrap_or(d.dedup_window),
        },
    })
}

/// The delivery keys as written, in `[delivery]` or in one `[[sinks]]` entry.
struct DeliveryKeys {
    timeout: Option<Spanned<String>>,
    give_up_after: Option<Spanned<String>>,
    queue: Option<Spanned<i64>>,
    rate_per_minute: Option<Spanned<i64>>,
    dedup_window: Option<Spanned<String>>,
}

/// Checks the delivery keys of the table `prefix` (`delivery` or `sinks[2]`).
fn delivery_keys(
    prefix: &str,
    raw: DeliveryKeys,
    src: &Source<'_>,
) -> Result<DeliveryOverrides, PolicyError> {
    let key = |field: &str| format!("{prefix}.{field}");
    let duration = |raw: Option<Spanned<String>>,
                    field: &str,
                    range: RangeInclusive<Duration>|
     -> Result<Option<Duration>, PolicyError> {
        let Some(raw) = raw else { return Ok(None) };
        let value = parse_duration(raw.get_ref()).and_then(|d| {
            if range.contains(&d) {
                Ok(d)
            } else {
                Err(format!(
                    "{:?} is out of range; it must be {} to {}",
                    raw.get_ref(),
                    format_duration(*range.start()),
                    format_duration(*range.end())
                ))
            }
        });
        value
            .map(Some)
            .map_err(|m| src.invalid(&raw.span(), &key(field), m))
    };
    let day = Duration::from_secs(86_400);
    let timeout = duration(
        raw.timeout,
        "timeout",
        Duration::from_millis(100)..=Duration::from_secs(600),
    )?;
    let give_up_after = duration(
        raw.give_up_after,
        "give_up_after",
        Duration::from_secs(1)..=30 * day,
    )?;
    let dedup_window = duration(raw.dedup_window, "dedup_window", Duration::ZERO..=day)?;
    let queue = raw
        .queue
        .map(|q| count_in(Some(q), 0, &key("queue"), src, 1..=1_000_000, ""))
        .transpose()?;
    let rate_per_minute = raw
        .rate_per_minute
        .map(|r| {
            count_in(
                Some(r),
                0,
                &key("rate_per_minute"),
                src,
                0..=100_000,
                " (0: no limit)",
            )
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        })
        .transpose()?;
    Ok(DeliveryOverrides {
        timeout,
        give_up_after,
        queue,
        rate_per_minute,
        dedup_window,
    })
}

fn sinks(
    raw: Option<Spanned<Vec<Spanned<RawSink>>>>,
    base: &[SinkPolicy],
    src: &Source<'_>,
) -> Result<Vec<SinkPolicy>, PolicyError> {
    let Some(raw) = raw else {
        return Ok(base.to_vec());
    };
    let list_span = raw.span();
    let raw = raw.into_inner();
    if raw.is_empty() {
        return Err(src.invalid(
            &list_span,
            "sinks",
            "an empty list would send alerts nowhere; leave `sinks` out for the built-in \
             stdout sink"
                .to_owned(),
        ));
    }
    let mut sinks: Vec<SinkPolicy> = Vec::with_capacity(raw.len());
    for (index, rule) in raw.into_iter().enumerate() {
        let (sink, name_span) = sink(index, rule, src)?;
        if let Some(first) = sinks.iter().position(|s| s.name == sink.name) {
            return Err(src.invalid(
                &name_span,
                &format!("sinks[{index}].name"),
                format!(
                    "{:?} is already the name of sinks[{first}] (a sink without `name` is named \
                     after its type); give each sink its own name: it names its spool directory \
                     and its counters",
                    sink.name
                ),
            ));
        }
        sinks.push(sink);
    }
    Ok(sinks)
}

/// One `[[sinks]]` entry, the `index`th in the file, and the span its name is reported at.
fn sink(
    index: usize,
    raw: Spanned<RawSink>,
    src: &Source<'_>,
) -> Result<(SinkPolicy, Range<usize>), PolicyError> {
    let sink_span = raw.span();
    let raw = raw.into_inner();
    let key = |field: &str| format!("sinks[{index}].{field}");

    let Some(kind) = &raw.kind else {
        return Err(src.invalid(
            &sink_span,
            &key("type"),
            "missing; every sink has a type: \"stdout\", \"file\", \"webhook\", \"pagerduty\", \
             \"slack\", \"alertmanager\" or \"syslog\""
                .to_owned(),
        ));
    };
    let (kind, kind_span) = (*kind.get_ref(), kind.span());

    // A key of another type would be silently ignored: say which keys this type has.
    let allowed = sink_keys(kind);
    for (field, span) in set_keys(&raw) {
        if !allowed.contains(&field) {
            let keys = if allowed.is_empty() {
                "it has none besides type, name, min_severity and rules".to_owned()
            } else {
                format!("its keys are {}", allowed.join(", "))
            };
            return Err(src.invalid(
                &span,
                &key(field),
                format!("a {} sink has no `{field}`; {keys}", kind.as_str()),
            ));
        }
    }

    let (name, name_span) = match &raw.name {
        None => (kind.as_str().to_owned(), kind_span),
        Some(name) => {
            check_sink_name(name.get_ref())
                .map_err(|m| src.invalid(&name.span(), &key("name"), m))?;
            (name.get_ref().clone(), name.span())
        }
    };
    let rules = match raw.rules {
        None => None,
        Some(rules) => {
            if rules.get_ref().is_empty() {
                return Err(src.invalid(
                    &rules.span(),
                    &key("rules"),
                    "must list at least one rule; leave `rules` out to send every rule".to_owned(),
                ));
            }
            Some(values(list(
                Some(rules),
                &[],
                &key("rules"),
                src,
                check_rule_name,
            )?))
        }
    };

    let secret = |env: &Option<Spanned<String>>,
                  file: &Option<Spanned<String>>,
                  what: &str,
                  field: &str|
     -> Result<Option<SecretRef>, PolicyError> {
        let (env_key, file_key) = (format!("{field}_env"), format!("{field}_file"));
        match (env, file) {
            (Some(_), Some(file)) => Err(src.invalid(
                &file.span(),
                &key(&file_key),
                format!("{env_key} is set too; give the {what} one way"),
            )),
            (Some(env), None) => {
                check_env_name(env.get_ref())
                    .map_err(|m| src.invalid(&env.span(), &key(&env_key), m))?;
                Ok(Some(SecretRef {
                    key: key(&env_key),
                    source: SecretSource::Env(env.get_ref().clone()),
                }))
            }
            (None, Some(file)) => {
                let path = check_absolute(file.get_ref())
                    .map_err(|m| src.invalid(&file.span(), &key(&file_key), m))?;
                Ok(Some(SecretRef {
                    key: key(&file_key),
                    source: SecretSource::File(path),
                }))
            }
            (None, None) => Ok(None),
        }
    };
    let required = |secret: Option<SecretRef>, what: &str, field: &str| {
        secret.ok_or_else(|| {
            src.invalid(
                &sink_span,
                &key(&format!("{field}_env")),
                format!(
                    "missing; a {} sink reads its {what} from {field}_env (an environment \
                     variable) or {field}_file (a file), never from the policy",
                    kind.as_str()
                ),
            )
        })
    };
    let url = |raw: &Option<Spanned<String>>| -> Result<Option<String>, PolicyError> {
        raw.as_ref()
            .map(|u| check_url(u.get_ref()).map_err(|m| src.invalid(&u.span(), &key("url"), m)))
            .transpose()
    };

    let target = match kind {
        SinkType::Stdout => SinkTarget::Stdout,
        SinkType::File => {
            let Some(path) = &raw.path else {
                return Err(src.invalid(
                    &sink_span,
                    &key("path"),
                    "missing; a file sink names the file it appends to".to_owned(),
                ));
            };
            let path_value = check_absolute(path.get_ref())
                .and_then(|p| {
                    if path.get_ref().ends_with('/') {
                        Err(format!("{:?} ends with '/'; name the file", path.get_ref()))
                    } else {
                        Ok(p)
                    }
                })
                .map_err(|m| src.invalid(&path.span(), &key("path"), m))?;
            let max_bytes = match &raw.max_bytes {
                None => FILE_MAX_BYTES,
                Some(n) => match u64::try_from(*n.get_ref()) {
                    Ok(n) if n == 0 || n >= 4096 => n,
                    _ => {
                        return Err(src.invalid(
                            &n.span(),
                            &key("max_bytes"),
                            format!(
                                "{} is out of range; rotate at 4096 bytes or more, or write 0 \
                                 to never rotate",
                                n.get_ref()
                            ),
                        ))
                    }
                },
            };
            let keep = count_in(
                raw.keep.clone(),
                FILE_KEEP as usize,
                &key("keep"),
                src,
                0..=100,
                "",
            )?;
            SinkTarget::File {
                path: path_value,
                max_bytes,
                keep: u32::try_from(keep).unwrap_or(u32::MAX),
            }
        }
        SinkType::Webhook => {
            let Some(target) = url(&raw.url)? else {
                return Err(src.invalid(
                    &sink_span,
                    &key("url"),
                    "missing; a webhook sink POSTs to this URL".to_owned(),
                ));
            };
            let mut headers = Vec::new();
            if let Some(raw_headers) = &raw.headers {
                for (name, value) in raw_headers.get_ref() {
                    check_header(name, value.get_ref())
                        .map_err(|m| src.invalid(&value.span(), &key("headers"), m))?;
                    headers.push((name.clone(), value.get_ref().clone()));
                }
            }
            SinkTarget::Webhook {
                url: target,
                headers,
                hmac_key: secret(
                    &raw.hmac_key_env,
                    &raw.hmac_key_file,
                    "HMAC key",
                    "hmac_key",
                )?,
            }
        }
        SinkType::PagerDuty => {
            let routing_key = secret(
                &raw.routing_key_env,
                &raw.routing_key_file,
                "routing key",
                "routing_key",
            )?;
            SinkTarget::PagerDuty {
                url: url(&raw.url)?.unwrap_or_else(|| PAGERDUTY_URL.to_owned()),
                routing_key: required(routing_key, "routing key", "routing_key")?,
            }
        }
        SinkType::Slack => {
            let webhook_url = secret(
                &raw.webhook_url_env,
                &raw.webhook_url_file,
                "webhook URL",
                "webhook_url",
            )?;
            SinkTarget::Slack {
                webhook_url: required(webhook_url, "webhook URL (a secret)", "webhook_url")?,
            }
        }
        SinkType::Alertmanager => {
            let Some(base) = url(&raw.url)? else {
                return Err(src.invalid(
                    &sink_span,
                    &key("url"),
                    "missing; an alertmanager sink needs the Alertmanager's URL \
                     (\"http://127.0.0.1:9093\")"
                        .to_owned(),
                ));
            };
            SinkTarget::Alertmanager {
                url: alertmanager_endpoint(&base),
            }
        }
        SinkType::Syslog => {
            let socket = match &raw.socket {
                None => PathBuf::from(SYSLOG_SOCKET),
                Some(socket) => check_absolute(socket.get_ref())
                    .map_err(|m| src.invalid(&socket.span(), &key("socket"), m))?,
            };
            let facility = match &raw.facility {
                None => 4,
                Some(f) => FACILITIES
                    .iter()
                    .find(|(name, _)| name == f.get_ref())
                    .map(|(_, code)| *code)
                    .ok_or_else(|| {
                        let names: Vec<&str> = FACILITIES.iter().map(|(n, _)| *n).collect();
                        src.invalid(
                            &f.span(),
                            &key("facility"),
                            format!(
                                "{:?} is not a facility; use one of {}",
                                f.get_ref(),
                                names.join(", ")
                            ),
                        )
                    })?,
            };
            SinkTarget::Syslog { socket, facility }
        }
    };

    let overrides = delivery_keys(
        &format!("sinks[{index}]"),
        DeliveryKeys {
            timeout: raw.timeout,
            give_up_after: raw.give_up_after,
            queue: raw.queue,
            rate_per_minute: raw.rate_per_minute,
            dedup_window: raw.dedup_window,
        },
        src,
    )?;
    Ok((
        SinkPolicy {
            name,
            min_severity: raw.min_severity.map_or(Severity::Low, |s| *s.get_ref()),
            rules,
            target,
            overrides,
        },
        name_span,
    ))
}

/// The keys a `[[sinks]]` entry sets beyond the common ones, with their spans.
fn set_keys(raw: &RawSink) -> Vec<(&'static str, Range<usize>)> {
    fn at<T>(
        key: &'static str,
        value: &Option<Spanned<T>>,
    ) -> Option<(&'static str, Range<usize>)> {
        value.as_ref().map(|v| (key, v.span()))
    }
    [
        at("path", &raw.path),
        at("max_bytes", &raw.max_bytes),
        at("keep", &raw.keep),
        at("url", &raw.url),
        at("headers", &raw.headers),
        at("hmac_key_env", &raw.hmac_key_env),
        at("hmac_key_file", &raw.hmac_key_file),
        at("routing_key_env", &raw.routing_key_env),
        at("routing_key_file", &raw.routing_key_file),
        at("webhook_url_env", &raw.webhook_url_env),
        at("webhook_url_file", &raw.webhook_url_file),
        at("socket", &raw.socket),
        at("facility", &raw.facility),
        at("timeout", &raw.timeout),
        at("give_up_after", &raw.give_up_after),
        at("queue", &raw.queue),
        at("rate_per_minute", &raw.rate_per_minute),
        at("dedup_window", &raw.dedup_window),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `/api/v2/alerts` below the Alertmanager's base URL (which may carry a path prefix, as
/// behind a reverse proxy); a URL that already ends so is taken as it is.
fn alertmanager_endpoint(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/api/v2/alerts") {
        base.to_owned()
    } else {
        format!("{base}/api/v2/alerts")
    }
}

/// Durations as people write them: a number and a unit, several in a row
/// (`"500ms"`, `"10s"`, `"5m"`, `"1h30m"`, `"7d"`).
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a duration; write a number and a unit (ms, s, m, h, d): \"500ms\", \
             \"10s\", \"5m\", \"1h30m\""
        )
    };
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let millis_per = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let part = number.checked_mul(millis_per).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// `"10s"`, `"1h"`, `"500ms"`: for messages.
pub(super) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_owned(),
        _ if ms.is_multiple_of(86_400_000) => format!("{}d", ms / 86_400_000),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

/// Names the spool directory and the counters: kept to what is safe in a path and a metric.
fn check_sink_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} must be 1 to 64 letters, digits, '-' or '_' (it names the sink's spool \
             directory and its counters)"
        ))
    }
}

fn check_rule_name(rule: &str) -> Result<Rule, String> {
    Rule::from_name(rule).ok_or_else(|| {
        format!(
            "{rule:?} is not a rule; the rules are {}",
            Rule::NAMES.join(", ")
        )
    })
}

fn check_absolute(path: &str) -> Result<PathBuf, String> {
    no_nul(path)?;
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(format!("{path:?} must be an absolute path"))
    }
}

/// An environment variable name as a shell would accept it.
fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an environment variable name (letters, digits and '_'); write the \
             variable's name here, not the secret"
        ))
    }
}

/// An `http` or `https` URL with a host, and no credentials: the URL appears in logs.
fn check_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("{text:?} is not a URL ({e}); write it as \"https://host/path\""))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{text:?} is not an http or https URL (scheme {:?})",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{:?} carries credentials, which would end up in logs; authenticate with the \
             sink's secret keys (hmac_key_env, hmac_key_file) instead",
            format!(
                "{}://…@{}",
                url.scheme(),
                url.host_str().unwrap_or_default()
            )
        ));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "{text:?} has a fragment ('#'), which is never sent"
        ));
    }
    Ok(text.to_owned())
}

/// A header the webhook sends: an RFC 9110 token for the name, visible characters for the value.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(format!("{name:?} is not a valid HTTP header name"));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{name:?} is set by the detector itself and may not be replaced"
        ));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err(format!(
            "the value of {name:?} must be printable ASCII, without line breaks"
        ));
    }
    Ok(())
}

// === checks of single values ===

fn check_launcher_name(name: &str) -> Result<String, String> {
    let name = check_name(name).map_err(|message| {
        if name.contains('/') {
            format!("{message}; list full paths in jvm.launcher_paths")
        } else {
            message
        }
    })?;
    // The kernel recognises a launcher by the new `comm`, which exec sets to the
    // basename cut at TASK_COMM_LEN - 1 bytes.
    if name.len() > MAX_COMM {
        return Err(format!(
            "{name:?} is {} bytes; a launcher name is matched on the process name, which \
             the kernel cuts at {MAX_COMM}: list the full path in jvm.launcher_paths instead",
            name.len()
        ));
    }
    Ok(name)
}

fn check_class_name(name: &str) -> Result<String, String> {
    check_name(name).map_err(|message| {
        if name.contains('/') {
            format!("{message}; a name matches the program in any directory")
        } else {
            message
        }
    })
}

/// A basename used as a kernel map key: launcher names and class names.
fn check_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("a name must not be empty".to_owned());
    }
    no_nul(name)?;
    if name.contains('/') {
        return Err(format!("{name:?} must be a basename, without '/'"));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "{name:?} is {} bytes; the kernel's name keys hold at most {MAX_NAME}",
            name.len()
        ));
    }
    Ok(name.to_owned())
}

fn check_launcher_path(path: &str) -> Result<String, String> {
    no_nul(path)?;
    if !path.starts_with('/') {
        return Err(format!("{path:?} must be an absolute path"));
    }
    check_file_path(path)?;
    Ok(path.to_owned())
}

/// The parts of an absolute path to a file that the kernel can match exactly.
fn check_file_path(path: &str) -> Result<(), String> {
    if path.ends_with('/') {
        return Err(format!(
            "{path:?} ends with '/'; name the program's file, not a directory"
        ));
    }
    if path.len() > MAX_PATH {
        return Err(format!(
            "{path:?} is {} bytes; the kernel reads at most {MAX_PATH} bytes of a path",
            path.len()
        ));
    }
    Ok(())
}

/// Normalised to end with exactly one '/', so that "/tmp" matches "/tmp/x" but not "/tmpfoo".
fn check_writable_dir(dir: &str) -> Result<String, String> {
    no_nul(dir)?;
    if !dir.starts_with('/') {
        return Err(format!("{dir:?} must be an absolute path"));
    }
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(format!(
            "{dir:?} would mark every program as run from a writable directory; name the \
             directories themselves"
        ));
    }
    if trimmed.len() > MAX_DIR {
        return Err(format!(
            "{dir:?} is {} bytes; the kernel's directory prefixes hold at most {MAX_DIR} \
             (plus the trailing '/')",
            trimmed.len()
        ));
    }
    Ok(format!("{trimmed}/"))
}

/// An absolute path (matched exactly) or a basename (matched on the executed file's basename).
/// The kernel keys allow entries by a hash, so a basename may be as long as a path.
fn check_allowed_program(program: &str) -> Result<String, String> {
    if program.is_empty() {
        return Err("a program must not be empty".to_owned());
    }
    no_nul(program)?;
    if program.starts_with('/') {
        check_file_path(program)?;
    } else if program.contains('/') {
        return Err(format!(
            "{program:?} must be an absolute path or a plain basename"
        ));
    } else if program.len() > MAX_PATH {
        return Err(format!(
            "{program:?} is {} bytes; the kernel reads at most {MAX_PATH} bytes of a name",
            program.len()
        ));
    }
    Ok(program.to_owned())
}

fn check_port(port: &i64) -> Result<u16, String> {
    u16::try_from(*port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("{port} is not a port number; ports are 1 to 65535"))
}

fn check_cidr(text: &str) -> Result<Cidr, String> {
    Cidr::parse(text).map_err(|err| err.to_string())
}

/// Stored in canonical form: an IPv4-mapped IPv6 address becomes the IPv4 address.
fn check_resolver(text: &str) -> Result<IpAddr, String> {
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
fn check_suffix(suffix: &str) -> Result<String, String> {
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

/// The kernel compares NUL-terminated strings: a NUL would end the value early.
fn no_nul(value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err(format!("{value:?} must not contain a NUL character"))
    } else {
        Ok(())
    }
}
