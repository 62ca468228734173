//! `[delivery]` and `[[sinks]]` of the policy file, checked: where alerts go and how.

use std::ops::Range;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::{count_in, list, no_nul, values, Source};
use crate::policy::raw::{RawDelivery, RawSink};
use crate::policy::{
    DeliveryOverrides, DeliveryPolicy, PolicyError, SecretRef, SecretSource, SinkDelivery,
    SinkPolicy, SinkTarget, SinkType, SyslogFormat,
};
use crate::timefmt::{format_duration, parse_duration};
use crate::vocab::{Rule, Severity};

/// PagerDuty's Events API v2 endpoint, when a `pagerduty` sink gives no `url`.
const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Where a `syslog` sink sends, when it gives no `socket`.
const SYSLOG_SOCKET: &str = "/dev/log";

/// What `[delivery] journal_max_bytes` may be.
const JOURNAL_BYTES: RangeInclusive<u64> = (1 << 20)..=(64 << 30);

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
            "format",
            "give_up_after",
            "queue",
            "rate_per_minute",
            "dedup_window",
        ],
    }
}

pub(crate) fn delivery(
    raw: RawDelivery,
    base: &DeliveryPolicy,
    src: &Source<'_>,
) -> Result<DeliveryPolicy, PolicyError> {
    let spool_dir = match raw.spool_dir {
        None => base.spool_dir.clone(),
        Some(dir) => check_absolute(dir.get_ref())
            .map_err(|m| src.invalid(&dir.span(), "delivery.spool_dir", m))?,
    };
    let journal_max_bytes = match raw.journal_max_bytes {
        None => base.journal_max_bytes,
        Some(n) => match u64::try_from(*n.get_ref()) {
            Ok(v) if JOURNAL_BYTES.contains(&v) => v,
            _ => {
                return Err(src.invalid(
                    &n.span(),
                    "delivery.journal_max_bytes",
                    format!(
                        "{} is out of range; the alert journal needs {} to {} bytes (1 MiB to \
                         64 GiB)",
                        n.get_ref(),
                        JOURNAL_BYTES.start(),
                        JOURNAL_BYTES.end()
                    ),
                ))
            }
        },
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
        journal_max_bytes,
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

pub(crate) fn sinks(
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
            let format = match raw.format.as_ref().map(|f| (f, f.get_ref().as_str())) {
                None | Some((_, "rfc3164")) => SyslogFormat::Rfc3164,
                Some((_, "rfc5424")) => SyslogFormat::Rfc5424,
                Some((f, other)) => {
                    return Err(src.invalid(
                        &f.span(),
                        &key("format"),
                        format!("{other:?} is not a syslog format; use \"rfc3164\" or \"rfc5424\""),
                    ))
                }
            };
            SinkTarget::Syslog {
                socket,
                facility,
                format,
            }
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
        at("format", &raw.format),
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
