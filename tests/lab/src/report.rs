//! Judging a run against its proof obligations, and the table a newcomer reads. Pure: the
//! observations come from run.rs.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use serde_json::Value;

use super::{
    run::{rule_of, AttackFacts, Observation},
    scenarios::{
        column_name, short_rule, Attack, Column, Kind, Lookup, Mode, Payload, Scenario,
        EXPLOIT_CHAIN, PENDING_RULES,
    },
};

/// The verdict on one scenario in one mode.
#[derive(Debug)]
pub struct Outcome {
    pub scenario: &'static Scenario,
    pub mode: Column,
    /// The table cell.
    pub cell: String,
    /// Broken obligations; any makes the lab fail.
    pub failures: Vec<String>,
    /// Pending rules (not yet in the detector) that raised no alert: failures only with
    /// `--strict`.
    pub missing: Vec<&'static str>,
    pub took: Duration,
    pub dir: PathBuf,
}

impl Outcome {
    pub fn passed(&self, strict: bool) -> bool {
        self.failures.is_empty() && (!strict || self.missing.is_empty())
    }
}

pub fn evaluate(scenario: &'static Scenario, mode: Column, obs: &Observation) -> Outcome {
    let mut outcome = Outcome {
        scenario,
        mode,
        cell: String::new(),
        failures: obs.errors.clone(),
        missing: Vec::new(),
        took: obs.took,
        dir: obs.dir.clone(),
    };
    match &scenario.kind {
        Kind::Attack(attack) => match &obs.attack {
            Some(facts) => judge_attack(&mut outcome, attack, facts, obs.alerts.as_deref()),
            None => outcome.cell = "✗ did not run".to_owned(),
        },
        Kind::Benign(_) => judge_benign(&mut outcome, obs),
    }
    if let Some(problem) = &obs.detector_problem {
        outcome.failures.push(problem.clone());
    }
    if !outcome.failures.is_empty() && !outcome.cell.starts_with('✗') {
        outcome.cell = format!("✗ {}", outcome.cell);
    }
    outcome
}

/// `canary pwned absent; LDAP server: 1 connection; class server: 0 downloads; ...`
fn describe_attack(attack: &Attack, facts: &AttackFacts) -> String {
    let mut text = format!(
        "{}canary {}; {}: {} {}; class server: {} download(s)",
        attack
            .payload
            .map_or_else(String::new, |p| format!("payload {}: ", p.class())),
        if facts.canary { "present" } else { "absent" },
        attack.lookup.server(),
        facts.contacts,
        match attack.lookup {
            Lookup::Dns => "query(ies)",
            Lookup::Ldap { .. } | Lookup::Rmi => "connection(s)",
        },
        facts.class_downloads
    );
    if attack.payload == Some(Payload::ReverseShell) {
        let _ = write!(text, "; reverse shells: {}", facts.reverse_shells);
    }
    if attack.lookup == Lookup::Dns {
        let _ = write!(
            text,
            "; secret {}",
            if facts.secret_exfiltrated {
                "exfiltrated"
            } else {
                "not received"
            }
        );
    }
    if !facts.lookups.is_empty() {
        let _ = write!(text, "; app: {}", facts.lookups.join(" / "));
    }
    text
}

fn judge_attack(
    outcome: &mut Outcome,
    attack: &Attack,
    facts: &AttackFacts,
    alerts: Option<&[Value]>,
) {
    let succeeded = facts.achieved(attack);
    match outcome.mode {
        None => {
            if succeeded {
                outcome.cell = match attack.payload {
                    None => "exfil ✓ secret at DNS".to_owned(),
                    Some(Payload::ReverseShell) => "RCE ✓ canary, shell called".to_owned(),
                    Some(_) => "RCE ✓ canary".to_owned(),
                };
            } else {
                outcome.cell = "✗ no RCE".to_owned();
                outcome.failures.push(format!(
                    "without the detector the attack must succeed, but it did not: {}",
                    describe_attack(attack, facts)
                ));
            }
        }
        Some(Mode::Monitor) => {
            if !succeeded {
                outcome.failures.push(format!(
                    "monitor mode only reports, yet the attack did not complete: {}",
                    describe_attack(attack, facts)
                ));
            }
            let alerts = alerts.unwrap_or_default();
            let mut seen = Vec::new();
            for rule in attack.expected_rules() {
                if alerts.iter().any(|a| rule_of(a) == Some(rule)) {
                    seen.push(short_rule(rule));
                } else if PENDING_RULES.contains(&rule) {
                    outcome.missing.push(rule);
                } else {
                    outcome
                        .failures
                        .push(format!("expected a {rule} alert, got none"));
                }
            }
            let chains: Vec<&Value> = alerts
                .iter()
                .filter(|a| rule_of(a) == Some(EXPLOIT_CHAIN))
                .collect();
            if chains.len() > 1 {
                outcome.failures.push(format!(
                    "{} exploit_chain alerts for one attack, expected exactly one",
                    chains.len()
                ));
            }
            for chain in &chains {
                if chain.get("severity").and_then(Value::as_str) != Some("critical") {
                    outcome
                        .failures
                        .push(format!("exploit_chain is not critical: {}", brief(chain)));
                }
            }
            let mut cell = format!("rules: {}", seen.join(" "));
            if outcome.failures.is_empty() {
                cell.push_str(" ✓");
            }
            if !outcome.missing.is_empty() {
                let missing: Vec<&str> = outcome.missing.iter().map(|r| short_rule(r)).collect();
                let _ = write!(cell, "; MISSING {}", missing.join(" "));
            }
            outcome.cell = cell;
        }
        Some(Mode::Enforce) => {
            let (unit, what) = match attack.lookup {
                Lookup::Dns => ("queries", "no secret"),
                Lookup::Ldap { .. } | Lookup::Rmi => ("conns", "no canary"),
            };
            if facts.got_anywhere() {
                outcome.cell = format!("✗ got through: {} {unit}", facts.contacts);
                outcome.failures.push(format!(
                    "enforce mode must deny the JNDI step in the kernel, but the attack got \
                     through: {}",
                    describe_attack(attack, facts)
                ));
            } else {
                // The JVM's own view of the denied lookup, when it says so.
                let eperm = facts
                    .lookups
                    .iter()
                    .any(|l| l.contains("Operation not permitted"));
                outcome.cell = format!(
                    "blocked: 0 {unit}{}, {what} ✓",
                    if eperm { " (EPERM)" } else { "" }
                );
            }
        }
    }
}

fn judge_benign(outcome: &mut Outcome, obs: &Observation) {
    let Some(facts) = &obs.benign else {
        outcome.cell = "✗ did not run".to_owned();
        return;
    };
    if !facts.worked {
        outcome.failures.push(format!(
            "the benign program must work ({}), but it did not: exit {}; output: {}",
            facts.effect,
            facts
                .exit
                .map_or_else(|| "by signal".to_owned(), |c| c.to_string()),
            facts.output
        ));
    }
    let alerts = obs.alerts.as_deref().unwrap_or_default();
    let loud: Vec<&Value> = alerts
        .iter()
        .filter(|a| {
            matches!(
                a.get("severity").and_then(Value::as_str),
                Some("high" | "critical")
            )
        })
        .collect();
    for alert in &loud {
        outcome.failures.push(format!(
            "a benign scenario must raise nothing high or critical: {}",
            brief(alert)
        ));
    }
    let quiet_note = match alerts.len() - loud.len() {
        0 => String::new(),
        n => format!(" ({n} low/medium)"),
    };
    outcome.cell = match (outcome.mode, facts.worked) {
        (_, false) => "✗ broken".to_owned(),
        (None, true) => "works ✓".to_owned(),
        (Some(Mode::Monitor), true) if loud.is_empty() => format!("quiet ✓{quiet_note}"),
        (Some(Mode::Enforce), true) if loud.is_empty() => format!("works, quiet ✓{quiet_note}"),
        (_, true) => format!("✗ {} high/critical", loud.len()),
    };
}

/// `jvm_shell_spawn (critical, reported): java (pid 1) spawned a shell: ...`
fn brief(alert: &Value) -> String {
    let field = |key: &str| alert.get(key).and_then(Value::as_str).unwrap_or("?");
    format!(
        "{} ({}, {}): {}",
        field("rule"),
        field("severity"),
        field("action"),
        field("summary")
    )
}

// === the table ===

/// The table of every scenario that ran, one column per mode that ran.
pub fn table(outcomes: &[Outcome], modes: &[Column]) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["scenario".to_owned(), "what it does".to_owned()];
    header.extend(modes.iter().map(|m| column_name(*m).to_owned()));
    rows.push(header);
    let mut names: Vec<&'static Scenario> = Vec::new();
    for outcome in outcomes {
        if !names.iter().any(|s| s.name == outcome.scenario.name) {
            names.push(outcome.scenario);
        }
    }
    for scenario in names {
        let mut row = vec![scenario.name.to_owned(), scenario.what.to_owned()];
        for mode in modes {
            row.push(
                outcomes
                    .iter()
                    .find(|o| o.scenario.name == scenario.name && o.mode == *mode)
                    .map_or_else(|| "-".to_owned(), |o| o.cell.clone()),
            );
        }
        rows.push(row);
    }
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| {
                let pad = width - cell.chars().count();
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
        }
    }
    out
}

/// `MISSING (...): jndi_probe in 8 runs, exploit_chain in 8 runs`, or `None`.
pub fn missing_summary(outcomes: &[Outcome]) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for rule in outcomes.iter().flat_map(|o| o.missing.iter()) {
        match counts.iter_mut().find(|(r, _)| r == rule) {
            Some((_, n)) => *n += 1,
            None => counts.push((rule, 1)),
        }
    }
    if counts.is_empty() {
        return None;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(rule, n)| format!("{rule} in {n} attack(s)"))
        .collect();
    Some(format!("MISSING in monitor mode: {}", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::find;

    fn alert(rule: &str, severity: &str) -> Value {
        serde_json::json!({"rule": rule, "severity": severity, "action": "reported", "summary": "s"})
    }

    fn scenario(name: &str) -> &'static Scenario {
        find(name).expect("a scenario of the table")
    }

    fn attack_obs(facts: AttackFacts, alerts: Option<Vec<Value>>) -> Observation {
        Observation {
            attack: Some(facts),
            alerts,
            ..Observation::default()
        }
    }

    #[test]
    fn none_mode_needs_the_canary() {
        let rce = attack_obs(
            AttackFacts {
                canary: true,
                contacts: 1,
                class_downloads: 1,
                ..AttackFacts::default()
            },
            None,
        );
        let outcome = evaluate(scenario("ldap-shell"), None, &rce);
        assert!(outcome.passed(true), "{outcome:?}");
        assert_eq!(outcome.cell, "RCE ✓ canary");

        let nothing = attack_obs(AttackFacts::default(), None);
        let outcome = evaluate(scenario("ldap-shell"), None, &nothing);
        assert!(!outcome.passed(false));
        assert!(outcome.cell.starts_with('✗'));

        // The reverse shell must also have called back.
        let no_callback = attack_obs(
            AttackFacts {
                canary: true,
                ..AttackFacts::default()
            },
            None,
        );
        assert!(!evaluate(scenario("ldap-revshell"), None, &no_callback).passed(false));

        let exfil = attack_obs(
            AttackFacts {
                secret_exfiltrated: true,
                contacts: 1,
                ..AttackFacts::default()
            },
            None,
        );
        let outcome = evaluate(scenario("dns-exfil"), None, &exfil);
        assert!(outcome.passed(true));
        assert_eq!(outcome.cell, "exfil ✓ secret at DNS");
    }

    #[test]
    fn monitor_mode_tolerates_pending_rules_unless_strict() {
        let rce = || AttackFacts {
            canary: true,
            ..AttackFacts::default()
        };
        let partial = attack_obs(
            rce(),
            Some(vec![
                alert("jvm_ldap_egress", "high"),
                alert("jvm_shell_spawn", "critical"),
                alert("jvm_unexpected_egress", "medium"),
            ]),
        );
        let outcome = evaluate(scenario("ldap-shell"), Some(Mode::Monitor), &partial);
        assert!(outcome.passed(false), "{outcome:?}");
        assert!(!outcome.passed(true));
        assert_eq!(
            outcome.missing,
            ["jndi_probe", "jvm_class_download", "exploit_chain"]
        );
        assert_eq!(
            outcome.cell,
            "rules: ldap shell ✓; MISSING jndi_probe class chain"
        );

        let full = attack_obs(
            rce(),
            Some(
                [
                    ("jndi_probe", "medium"),
                    ("jvm_ldap_egress", "high"),
                    ("jvm_class_download", "critical"),
                    ("jvm_shell_spawn", "critical"),
                    ("exploit_chain", "critical"),
                ]
                .iter()
                .map(|(r, s)| alert(r, s))
                .collect(),
            ),
        );
        let outcome = evaluate(scenario("ldap-shell"), Some(Mode::Monitor), &full);
        assert!(outcome.passed(true), "{outcome:?}");
        assert_eq!(outcome.cell, "rules: jndi_probe ldap class shell chain ✓");
    }

    #[test]
    fn monitor_mode_fails_on_missing_landed_rules_and_duplicate_chains() {
        let rce = || AttackFacts {
            canary: true,
            ..AttackFacts::default()
        };
        let no_egress = attack_obs(rce(), Some(vec![alert("jvm_shell_spawn", "critical")]));
        assert!(!evaluate(scenario("ldap-shell"), Some(Mode::Monitor), &no_egress).passed(false));

        let two_chains = attack_obs(
            rce(),
            Some(vec![
                alert("jvm_ldap_egress", "high"),
                alert("jvm_shell_spawn", "critical"),
                alert("exploit_chain", "critical"),
                alert("exploit_chain", "critical"),
            ]),
        );
        let outcome = evaluate(scenario("ldap-shell"), Some(Mode::Monitor), &two_chains);
        assert!(!outcome.passed(false));
        assert!(outcome.failures[0].contains("exactly one"), "{outcome:?}");

        let not_done = attack_obs(AttackFacts::default(), Some(Vec::new()));
        assert!(!evaluate(scenario("ldap-shell"), Some(Mode::Monitor), &not_done).passed(false));
    }

    #[test]
    fn enforce_mode_needs_nothing_to_get_through() {
        let blocked = attack_obs(AttackFacts::default(), Some(Vec::new()));
        let outcome = evaluate(scenario("rmi-shell"), Some(Mode::Enforce), &blocked);
        assert!(outcome.passed(true));
        assert_eq!(outcome.cell, "blocked: 0 conns, no canary ✓");

        let connected = attack_obs(
            AttackFacts {
                contacts: 1,
                ..AttackFacts::default()
            },
            Some(Vec::new()),
        );
        assert!(!evaluate(scenario("rmi-shell"), Some(Mode::Enforce), &connected).passed(false));

        let leaked = attack_obs(
            AttackFacts {
                secret_exfiltrated: true,
                ..AttackFacts::default()
            },
            Some(Vec::new()),
        );
        assert!(!evaluate(scenario("dns-exfil"), Some(Mode::Enforce), &leaked).passed(false));
    }

    #[test]
    fn benign_runs_must_work_and_stay_below_high() {
        let obs = |worked: bool, alerts: Vec<Value>| Observation {
            benign: Some(crate::run::BenignFacts {
                exit: Some(if worked { 0 } else { 1 }),
                worked,
                effect: "it worked",
                output: String::new(),
            }),
            alerts: Some(alerts),
            ..Observation::default()
        };
        let quiet = evaluate(
            scenario("benign-http-client"),
            Some(Mode::Monitor),
            &obs(true, vec![alert("jvm_unexpected_egress", "medium")]),
        );
        assert!(quiet.passed(true));
        assert_eq!(quiet.cell, "quiet ✓ (1 low/medium)");

        let loud = evaluate(
            scenario("benign-helper"),
            Some(Mode::Monitor),
            &obs(true, vec![alert("jvm_shell_spawn", "critical")]),
        );
        assert!(!loud.passed(false));
        assert!(!evaluate(scenario("benign-javac"), None, &obs(false, Vec::new())).passed(false));
    }

    #[test]
    fn detector_problems_fail_the_run() {
        let obs = Observation {
            attack: Some(AttackFacts::default()),
            alerts: Some(Vec::new()),
            detector_problem: Some("the detector lost events: exec=1".to_owned()),
            ..Observation::default()
        };
        let outcome = evaluate(scenario("ldap-shell"), Some(Mode::Enforce), &obs);
        assert!(!outcome.passed(false));
        assert!(outcome.cell.starts_with('✗'));
    }

    #[test]
    fn the_table_lines_up() {
        let outcome = |name: &str, mode: Column, cell: &str| Outcome {
            scenario: scenario(name),
            mode,
            cell: cell.to_owned(),
            failures: Vec::new(),
            missing: if cell.contains("MISSING") {
                vec!["jndi_probe"]
            } else {
                Vec::new()
            },
            took: Duration::ZERO,
            dir: PathBuf::new(),
        };
        let outcomes = [
            outcome("ldap-shell", None, "RCE ✓ canary"),
            outcome(
                "ldap-shell",
                Some(Mode::Monitor),
                "rules: ldap ✓; MISSING jndi_probe",
            ),
            outcome("benign-javac", None, "works ✓"),
        ];
        let text = table(&outcomes, &[None, Some(Mode::Monitor)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");
        assert!(lines[0].starts_with("| scenario "));
        assert!(lines[3].contains("| -"), "{text}");
        assert_eq!(
            missing_summary(&outcomes).as_deref(),
            Some("MISSING in monitor mode: jndi_probe in 1 attack(s)")
        );
    }
}
