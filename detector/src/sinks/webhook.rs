//! The generic webhook: a JSON POST of the alert record, exactly as the stdout sink writes it
//! (without the newline), with the site's own headers, an `Idempotency-Key` (the alert's
//! stable id: a receiver that saw it before can drop the request) and, with a key, an
//! `X-Detector-Signature: sha256=<hex>` header: HMAC-SHA256 over the exact body bytes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::message::{hex, Envelope, Message, Request};

/// The signature header; its value is `sha256=` and the lower-case hex HMAC.
pub(crate) const SIGNATURE_HEADER: &str = "X-Detector-Signature";

/// The header carrying the alert's stable id.
pub(crate) const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// `sha256=<hex HMAC-SHA256 of body under key>`.
pub(crate) fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// The request for `envelope`; webhooks carry alerts only.
pub(crate) fn request(
    envelope: &Envelope,
    headers: &[(String, String)],
    hmac_key: Option<&[u8]>,
) -> Option<Request> {
    let Message::Alert(alert) = &envelope.message else {
        return None;
    };
    let body = serde_json::to_vec(alert).ok()?;
    let mut all = headers.to_vec();
    all.push((IDEMPOTENCY_HEADER.to_owned(), envelope.id.clone()));
    if let Some(key) = hmac_key {
        all.push((SIGNATURE_HEADER.to_owned(), signature(key, &body)));
    }
    Some(Request { body, headers: all })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{sample_alert, sample_envelope};

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn body_is_the_stdout_line_and_is_signed() {
        let envelope = sample_envelope();
        let headers = vec![("X-Team".to_owned(), "sec".to_owned())];
        let request = request(&envelope, &headers, Some(b"key")).expect("alerts are sent");
        let line = serde_json::to_vec(&sample_alert()).expect("json");
        assert_eq!(request.body, line);
        assert_eq!(
            request.headers,
            [
                ("X-Team".to_owned(), "sec".to_owned()),
                (IDEMPOTENCY_HEADER.to_owned(), envelope.id.clone()),
                (SIGNATURE_HEADER.to_owned(), signature(b"key", &line)),
            ]
        );
        let unsigned = super::request(&envelope, &[], None).expect("alerts are sent");
        assert!(unsigned.headers.iter().all(|(n, _)| n != SIGNATURE_HEADER));
    }
}
