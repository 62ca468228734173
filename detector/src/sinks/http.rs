//! The four HTTP sinks' common part: one `reqwest` client per sink (rustls, no redirects),
//! the request each format makes, and what the response means for a retry.
//!
//! Redirects are not followed: a signed body or a routing key must not be re-sent to wherever
//! a receiver points. Error text is logged only after the sink's secrets are cut out of it
//! (the Slack URL is one), and reqwest's errors without their URL.

use std::time::{Duration, SystemTime};

use reqwest::{header::HeaderMap, StatusCode};

use super::{
    alertmanager,
    backoff::parse_retry_after,
    error::{Failure, SinkError},
    message::{Envelope, Request},
    pagerduty, slack, webhook,
};
use crate::policy::{SecretRef, SinkDelivery, SinkTarget};

/// How much of a refusing receiver's response body goes in the log.
const BODY_IN_LOG: usize = 300;

/// `detector/<version>`.
const USER_AGENT: &str = concat!("detector/", env!("CARGO_PKG_VERSION"));

#[derive(Debug)]
pub(crate) struct HttpSink {
    client: reqwest::Client,
    url: String,
    format: Format,
    /// Values cut out of anything logged.
    secrets: Vec<String>,
}

/// What each HTTP sink sends.
pub(crate) enum Format {
    Webhook {
        headers: Vec<(String, String)>,
        hmac_key: Option<Vec<u8>>,
    },
    PagerDuty {
        routing_key: String,
    },
    Slack,
    Alertmanager,
}

impl std::fmt::Debug for Format {
    // By hand, so that no secret ever reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Webhook { .. } => "Webhook",
            Format::PagerDuty { .. } => "PagerDuty",
            Format::Slack => "Slack",
            Format::Alertmanager => "Alertmanager",
        })
    }
}

fn read_secret(sink: &str, secret: &SecretRef) -> Result<String, SinkError> {
    secret.read().map_err(|source| SinkError::Secret {
        sink: sink.to_owned(),
        source,
    })
}

impl HttpSink {
    pub(crate) fn new(
        sink: &str,
        target: &SinkTarget,
        delivery: &SinkDelivery,
    ) -> Result<HttpSink, SinkError> {
        let mut secrets = Vec::new();
        let (url, format) = match target {
            SinkTarget::Webhook {
                url,
                headers,
                hmac_key,
            } => {
                let hmac_key = hmac_key
                    .as_ref()
                    .map(|key| read_secret(sink, key))
                    .transpose()?;
                secrets.extend(hmac_key.clone());
                (
                    url.clone(),
                    Format::Webhook {
                        headers: headers.clone(),
                        hmac_key: hmac_key.map(String::into_bytes),
                    },
                )
            }
            SinkTarget::PagerDuty { url, routing_key } => {
                let routing_key = read_secret(sink, routing_key)?;
                secrets.push(routing_key.clone());
                (url.clone(), Format::PagerDuty { routing_key })
            }
            SinkTarget::Slack { webhook_url } => {
                let url = read_secret(sink, webhook_url)?;
                let parsed = url::Url::parse(&url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
                if parsed.is_none() {
                    return Err(SinkError::BadSecret {
                        sink: sink.to_owned(),
                        key: webhook_url.key.clone(),
                        message: "the secret is not an http or https URL".to_owned(),
                    });
                }
                secrets.push(url.clone());
                // The path alone is the credential too, and may turn up in error text.
                if let Some(path) = parsed.map(|u| u.path().to_owned()) {
                    if path.len() > 1 {
                        secrets.push(path);
                    }
                }
                (url, Format::Slack)
            }
            SinkTarget::Alertmanager { url } => (url.clone(), Format::Alertmanager),
            SinkTarget::Stdout | SinkTarget::File { .. } | SinkTarget::Syslog { .. } => {
                return Err(SinkError::BadSecret {
                    sink: sink.to_owned(),
                    key: "type".to_owned(),
                    message: "not an HTTP sink".to_owned(),
                })
            }
        };
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(delivery.timeout)
            .connect_timeout(delivery.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| SinkError::Client {
                sink: sink.to_owned(),
                source,
            })?;
        Ok(HttpSink {
            client,
            url,
            format,
            secrets,
        })
    }

    /// Cuts every secret out of `text`.
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            if !secret.is_empty() {
                text = text.replace(secret.as_str(), "<redacted>");
            }
        }
        text
    }

    pub(crate) async fn deliver(&mut self, envelope: &Envelope) -> Result<(), Failure> {
        let Some(request) = self.format.request(envelope) else {
            return Ok(());
        };
        let mut builder = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let response = builder
            .body(request.body)
            .send()
            .await
            .map_err(|e| Failure::Transient {
                reason: self.redact(&error_chain(&e.without_url())),
                after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let after = retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        let reason = self.redact(&format!("HTTP {status}{}", body_excerpt(&body)));
        Err(classify(status, reason, after))
    }
}

/// What a non-2xx status means: retry (with the receiver's `Retry-After`, if any) or not.
pub(crate) fn classify(status: StatusCode, reason: String, after: Option<Duration>) -> Failure {
    let transient = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error();
    if transient {
        Failure::Transient { reason, after }
    } else if status.is_redirection() {
        Failure::Permanent {
            reason: format!(
                "{reason}; redirects are not followed: point the sink at the final URL"
            ),
        }
    } else {
        Failure::Permanent { reason }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// `: <first line of the body, cut>` or nothing.
fn body_excerpt(body: &str) -> String {
    let line = body.trim();
    if line.is_empty() {
        return String::new();
    }
    let cut: String = line.chars().take(BODY_IN_LOG).collect();
    let cut = cut.replace(['\n', '\r'], " ");
    if cut.len() < line.len() {
        format!(": {cut}…")
    } else {
        format!(": {cut}")
    }
}

/// An error and its causes on one line: reqwest's own message is only "error sending request".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Format {
    /// The request for `envelope`, or `None` when this sink has no use for it.
    pub(crate) fn request(&self, envelope: &Envelope) -> Option<Request> {
        match self {
            Format::Webhook { headers, hmac_key } => {
                webhook::request(envelope, headers, hmac_key.as_deref())
            }
            Format::PagerDuty { routing_key } => pagerduty::event(&envelope.message, routing_key)
                .map(|body| Request {
                    body: json_bytes(&body),
                    headers: Vec::new(),
                }),
            Format::Slack => slack::message(&envelope.message).map(|body| Request {
                body: json_bytes(&body),
                headers: Vec::new(),
            }),
            Format::Alertmanager => alertmanager::alerts(&envelope.message).map(|body| Request {
                body: json_bytes(&body),
                headers: vec![("Idempotency-Key".to_owned(), envelope.id.clone())],
            }),
        }
    }
}

fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_that_are_retried() {
        for code in [429, 408, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).expect("status");
            assert!(
                matches!(
                    classify(status, String::new(), None),
                    Failure::Transient { .. }
                ),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 410, 413, 301, 302, 307] {
            let status = StatusCode::from_u16(code).expect("status");
            assert!(
                matches!(
                    classify(status, String::new(), None),
                    Failure::Permanent { .. }
                ),
                "{code}"
            );
        }
        let Failure::Transient { after, .. } = classify(
            StatusCode::TOO_MANY_REQUESTS,
            String::new(),
            Some(Duration::from_secs(1)),
        ) else {
            panic!("429 is transient");
        };
        assert_eq!(after, Some(Duration::from_secs(1)));
    }

    #[test]
    fn body_excerpts_are_one_short_line() {
        assert_eq!(body_excerpt(""), "");
        assert_eq!(body_excerpt("invalid_payload\n"), ": invalid_payload");
        let long = "x".repeat(1000);
        let cut = body_excerpt(&long);
        assert!(cut.chars().count() <= BODY_IN_LOG + 3, "{cut}");
        assert!(cut.ends_with('…'));
        assert_eq!(body_excerpt("a\nb"), ": a b");
    }

    #[test]
    fn secrets_are_redacted() {
        let sink = HttpSink {
            client: reqwest::Client::new(),
            url: String::new(),
            format: Format::Slack,
            secrets: vec![
                "https://hooks.example/services/T0/B0/XYZ".to_owned(),
                "/services/T0/B0/XYZ".to_owned(),
            ],
        };
        assert_eq!(
            sink.redact(
                "POST https://hooks.example/services/T0/B0/XYZ failed; path /services/T0/B0/XYZ"
            ),
            "POST <redacted> failed; path <redacted>"
        );
        assert_eq!(
            format!(
                "{:?}",
                Format::PagerDuty {
                    routing_key: "k".repeat(32)
                }
            ),
            "PagerDuty"
        );
    }
}
