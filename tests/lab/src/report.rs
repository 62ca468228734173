//! Judging a run against its proof obligations, and the table a newcomer reads. Pure: the
//! observations come from run.rs.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use serde_json::Value;

use super::{
    run::{rule_of, AttackFacts, Observation},
    scenarios::{
        short_rule, Attack, Column, Kind, Lookup, Mode, Payload, Scenario, Variant, EXPLOIT_CHAIN,
        PENDING_RULES,
    },
};

/// The verdict on one scenario in one mode.
#[derive(Debug)]
pub struct Outcome {
    pub scenario: &'static Scenario,
    pub column: Column,
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

pub fn evaluate(scenario: &'static Scenario, column: Column, obs: &Observation) -> Outcome {
    let mut outcome = Outcome {
        scenario,
        column,
        cell: String::new(),
        failures: obs.errors.clone(),
        missing: Vec::new(),
        took: obs.took,
        dir: obs.dir.clone(),
    };
    match &scenario.kind {
        Kind::Attack(attack) => match &obs.attack {
            Some(facts) => {
                judge_attack(&mut outcome, attack, facts, obs.alerts.as_deref());
                if attack.variant == Variant::Replayed && column.mode.is_some() {
                    judge_replay(&mut outcome, obs);
                }
            }
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
    match outcome.column.mode {
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
    outcome.cell = match (outcome.column.mode, facts.worked) {
        (_, false) => "✗ broken".to_owned(),
        (None, true) => "works ✓".to_owned(),
        (Some(Mode::Monitor), true) if loud.is_empty() => format!("quiet ✓{quiet_note}"),
        (Some(Mode::Enforce), true) if loud.is_empty() => format!("works, quiet ✓{quiet_note}"),
        (_, true) => format!("✗ {} high/critical", loud.len()),
    };
}

/// What makes a replayed alert the same as the live one: the rule, the JVM, the process and
/// the event's time, and its summary up to what the response added (enforce mode's response
/// is not replayed: "…; JVM (pid 1) quarantined: …").
fn alert_identity(alert: &Value) -> (String, String) {
    let field = |pointer: &str| {
        alert
            .pointer(pointer)
            .map_or_else(String::new, Value::to_string)
    };
    let id = ["/rule", "/severity", "/time", "/jvm/pid", "/process/pid"]
        .map(field)
        .join(" ");
    let summary = alert
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (id, summary)
}

/// The replay of the run's recording must raise the alerts the run raised.
fn judge_replay(outcome: &mut Outcome, obs: &Observation) {
    let Some(replayed) = &obs.replayed else {
        outcome
            .failures
            .push("the recording was not replayed".to_owned());
        outcome.cell = format!("{}; no replay", outcome.cell);
        return;
    };
    let sorted = |alerts: &[Value]| {
        let mut ids: Vec<(String, String)> = alerts.iter().map(alert_identity).collect();
        ids.sort();
        ids
    };
    let live = sorted(obs.alerts.as_deref().unwrap_or_default());
    let again = sorted(replayed);
    let same = live.len() == again.len()
        && live
            .iter()
            .zip(&again)
            .all(|((live_id, live_summary), (id, summary))| {
                live_id == id && live_summary.starts_with(summary.as_str())
            });
    if same {
        outcome.cell = format!("{}; replay: same {} ✓", outcome.cell, again.len());
    } else {
        let show = |alerts: &[(String, String)]| -> String {
            alerts
                .iter()
                .map(|(id, summary)| format!("{id} {summary}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        outcome.failures.push(format!(
            "the replay raised {} alert(s), the run {}: live [{}]; replayed [{}]",
            again.len(),
            live.len(),
            show(&live),
            show(&again)
        ));
        outcome.cell = format!(
            "{}; ✗ replay: {} of {}",
            outcome.cell,
            again.len(),
            live.len()
        );
    }
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

/// The table of every scenario that ran, one column per column that ran.
pub fn table(outcomes: &[Outcome], columns: &[Column]) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["scenario".to_owned(), "what it does".to_owned()];
    header.extend(columns.iter().map(|c| c.name()));
    rows.push(header);
    let mut names: Vec<&'static Scenario> = Vec::new();
    for outcome in outcomes {
        if !names.iter().any(|s| s.name == outcome.scenario.name) {
            names.push(outcome.scenario);
        }
    }
    for scenario in names {
        let mut row = vec![scenario.name.to_owned(), scenario.what.to_owned()];
        for column in columns {
            row.push(
                outcomes
                    .iter()
                    .find(|o| o.scenario.name == scenario.name && o.column == *column)
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
    use crate::scenarios::{find, COLUMNS};

    const NONE: Column = COLUMNS[0];
    const MONITOR: Column = COLUMNS[1];
    const ENFORCE: Column = COLUMNS[3];

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
        let outcome = evaluate(scenario("ldap-shell"), NONE, &rce);
        assert!(outcome.passed(true), "{outcome:?}");
        assert_eq!(outcome.cell, "RCE ✓ canary");

        let nothing = attack_obs(AttackFacts::default(), None);
        let outcome = evaluate(scenario("ldap-shell"), NONE, &nothing);
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
        assert!(!evaluate(scenario("ldap-revshell"), NONE, &no_callback).passed(false));

        let exfil = attack_obs(
            AttackFacts {
                secret_exfiltrated: true,
                contacts: 1,
                ..AttackFacts::default()
            },
            None,
        );
        let outcome = evaluate(scenario("dns-exfil"), NONE, &exfil);
        assert!(outcome.passed(true));
        assert_eq!(outcome.cell, "exfil ✓ secret at DNS");
    }

    #[test]
    fn monitor_mode_needs_every_rule_of_the_attack() {
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
        let outcome = evaluate(scenario("ldap-shell"), MONITOR, &partial);
        assert!(!outcome.passed(false), "{outcome:?}");
        assert_eq!(outcome.failures.len(), 3, "{outcome:?}");
        assert!(
            outcome.cell.starts_with("✗ rules: ldap shell"),
            "{outcome:?}"
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
        let outcome = evaluate(scenario("ldap-shell"), MONITOR, &full);
        assert!(outcome.passed(true), "{outcome:?}");
        assert_eq!(outcome.cell, "rules: jndi_probe ldap class shell chain ✓");

        // The replayed variant also needs its replay to raise the same alerts.
        let mut replayed = attack_obs(rce(), full.alerts.clone());
        replayed.replayed = full.alerts.clone();
        let outcome = evaluate(scenario("replay-curl"), MONITOR, &replayed);
        assert!(outcome.passed(true), "{outcome:?}");
        assert!(outcome.cell.ends_with("replay: same 5 ✓"), "{outcome:?}");
        // Enforce mode's response adds to the live summary only.
        let mut responded = full.alerts.clone().unwrap_or_default();
        responded[1]["summary"] = Value::from("s; JVM (pid 1) quarantined");
        let mut enforced = attack_obs(rce(), Some(responded));
        enforced.replayed = full.alerts.clone();
        assert!(evaluate(scenario("replay-curl"), MONITOR, &enforced).passed(true));
        replayed.replayed = Some(full.alerts.clone().unwrap_or_default()[1..].to_vec());
        let outcome = evaluate(scenario("replay-curl"), MONITOR, &replayed);
        assert!(!outcome.passed(false), "{outcome:?}");
        replayed.replayed = None;
        assert!(!evaluate(scenario("replay-curl"), MONITOR, &replayed).passed(false));
    }

    #[test]
    fn monitor_mode_fails_on_missing_landed_rules_and_duplicate_chains() {
        let rce = || AttackFacts {
            canary: true,
            ..AttackFacts::default()
        };
        let no_egress = attack_obs(rce(), Some(vec![alert("jvm_shell_spawn", "critical")]));
        assert!(!evaluate(scenario("ldap-shell"), MONITOR, &no_egress).passed(false));

        let two_chains = attack_obs(
            rce(),
            Some(vec![
                alert("jndi_probe", "medium"),
                alert("jvm_ldap_egress", "high"),
                alert("jvm_class_download", "critical"),
                alert("jvm_shell_spawn", "critical"),
                alert("exploit_chain", "critical"),
                alert("exploit_chain", "critical"),
            ]),
        );
        let outcome = evaluate(scenario("ldap-shell"), MONITOR, &two_chains);
        assert!(!outcome.passed(false));
        assert!(outcome.failures[0].contains("exactly one"), "{outcome:?}");

        let not_done = attack_obs(AttackFacts::default(), Some(Vec::new()));
        assert!(!evaluate(scenario("ldap-shell"), MONITOR, &not_done).passed(false));
    }

    #[test]
    fn enforce_mode_needs_nothing_to_get_through() {
        let blocked = attack_obs(AttackFacts::default(), Some(Vec::new()));
        let outcome = evaluate(scenario("rmi-shell"), ENFORCE, &blocked);
        assert!(outcome.passed(true));
        assert_eq!(outcome.cell, "blocked: 0 conns, no canary ✓");

        let connected = attack_obs(
            AttackFacts {
                contacts: 1,
                ..AttackFacts::default()
            },
            Some(Vec::new()),
        );
        assert!(!evaluate(scenario("rmi-shell"), ENFORCE, &connected).passed(false));

        let leaked = attack_obs(
            AttackFacts {
                secret_exfiltrated: true,
                ..AttackFacts::default()
            },
            Some(Vec::new()),
        );
        assert!(!evaluate(scenario("dns-exfil"), ENFORCE, &leaked).passed(false));
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
            MONITOR,
            &obs(true, vec![alert("jvm_unexpected_egress", "medium")]),
        );
        assert!(quiet.passed(true));
        assert_eq!(quiet.cell, "quiet ✓ (1 low/medium)");

        let loud = evaluate(
            scenario("benign-helper"),
            MONITOR,
            &obs(true, vec![alert("jvm_shell_spawn", "critical")]),
        );
        assert!(!loud.passed(false));
        assert!(!evaluate(scenario("benign-javac"), NONE, &obs(false, Vec::new())).passed(false));
    }

    #[test]
    fn detector_problems_fail_the_run() {
        let obs = Observation {
            attack: Some(AttackFacts::default()),
            alerts: Some(Vec::new()),
            detector_problem: Some("the detector lost events: exec=1".to_owned()),
            ..Observation::default()
        };
        let outcome = evaluate(scenario("ldap-shell"), ENFORCE, &obs);
        assert!(!outcome.passed(false));
        assert!(outcome.cell.starts_with('✗'));
    }

    #[test]
    fn the_table_lines_up() {
        let outcome = |name: &str, column: Column, cell: &str| Outcome {
            scenario: scenario(name),
            column,
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
            outcome("ldap-shell", NONE, "RCE ✓ canary"),
            outcome("ldap-shell", MONITOR, "rules: ldap ✓; MISSING jndi_probe"),
            outcome("benign-javac", NONE, "works ✓"),
        ];
        let text = table(&outcomes, &[NONE, MONITOR]);
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
