//! The code against `docs/contract.md`: the subcommands and flags against the binary's own
//! `--help`, the exit codes by running it, and the field tables of the alert record and the
//! stats line against what the code declares and serializes. A field, flag or rule added on
//! one side only fails here, so the two cannot drift apart. No kernel or root needed.

use std::{collections::BTreeSet, process::Command};

use detector::{
    alert::{
        Alert, Ancestor, Container, IncidentInfo, Kubernetes, NetworkInfo, ProcessInfo,
        TimelineEntry,
    },
    daemon::Stats,
    response::{Outcome, Step},
    sensors::LossCounts,
    sinks::SinkStats,
    vocab::Rule,
};
use serde::de::{self, Deserialize, Deserializer, Visitor};

const CONTRACT: &str = include_str!("../../docs/contract.md");

/// The lines of the section headed `heading` (up to the next heading of the same or a higher
/// level).
fn section(heading: &str) -> Vec<&'static str> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = CONTRACT.lines().skip_while(|l| *l != heading);
    assert!(
        lines.next().is_some(),
        "docs/contract.md has no {heading:?}"
    );
    lines
        .take_while(|l| {
            let hashes = l.chars().take_while(|c| *c == '#').count();
            hashes == 0 || hashes > level || !l[hashes..].starts_with(' ')
        })
        .collect()
}

/// The back-quoted first cells of the table rows in `lines`: `| `name` | ... |`.
fn first_cells(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let cell = l.strip_prefix("| `")?;
            Some(cell[..cell.find('`')?].to_owned())
        })
        .collect()
}

/// The field names a serde struct declares (what `deserialize_struct` is told), without
/// needing a value of it.
fn fields<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    struct Fields(Vec<&'static str>);
    #[derive(Debug)]
    struct Done;
    impl std::fmt::Display for Done {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("done")
        }
    }
    impl std::error::Error for Done {}
    impl de::Error for Done {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Done
        }
    }
    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Done;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Done> {
            Err(Done)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Done> {
            self.0.extend_from_slice(fields);
            Err(Done)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut found = Fields(Vec::new());
    let _ = T::deserialize(&mut found);
    assert!(!found.0.is_empty(), "not a struct");
    found.0
}

fn prefixed(prefix: &str, names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("{prefix}{n}")).collect()
}

fn sorted(names: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    names.into_iter().collect()
}

#[test]
fn alert_fields_are_the_documented_ones() {
    let mut code: Vec<String> = prefixed("", &fields::<Alert>());
    // The nested objects, under their field names; `jvm` has `process`'s fields.
    code.extend(prefixed("process.", &fields::<ProcessInfo>()));
    code.extend(prefixed("ancestry[].", &fields::<Ancestor>()));
    code.extend(prefixed("network.", &fields::<NetworkInfo>()));
    code.extend(prefixed("container.", &fields::<Container>()));
    code.extend(prefixed("kubernetes.", &fields::<Kubernetes>()));
    code.extend(prefixed("incident.", &fields::<IncidentInfo>()));
    code.extend(prefixed("incident.timeline[].", &fields::<TimelineEntry>()));
    code.extend(prefixed("response.", &fields::<Outcome>()));
    code.extend(prefixed("response.steps[].", &fields::<Step>()));
    // `forensics` is free-form JSON: its keys are what a capture of this process has.
    let forensics = detector::response::forensics::capture(std::process::id());
    let keys = forensics
        .as_object()
        .expect("forensics is an object")
        .keys();
    code.extend(keys.map(|k| format!("forensics.{k}")));

    let documented = first_cells(&section("## Alert record"));
    let rules_start = documented
        .iter()
        .position(|c| c == "jvm_shell_spawn")
        .unwrap_or(documented.len());
    assert_eq!(
        sorted(documented[..rules_start].iter().cloned()),
        sorted(code),
        "docs/contract.md's alert fields (left) and the code's (right) differ"
    );
}

#[test]
fn jvm_recognitions_are_the_documented_ones() {
    let names: Vec<String> = detector::vocab::JvmRecognition::NAMES
        .iter()
        .map(|n| format!("`{n}`"))
        .collect();
    let listed = names.join(", ");
    let row = CONTRACT
        .lines()
        .find(|l| l.starts_with("| `recognised_by` |"))
        .expect("a `recognised_by` row");
    assert!(row.contains(&listed), "{row} does not list {listed}");
    let stats = CONTRACT
        .lines()
        .find(|l| l.starts_with("| `jvms_recognised` |"))
        .expect("a `jvms_recognised` row");
    assert!(stats.contains(&listed), "{stats} does not list {listed}");
}

#[test]
fn rules_are_the_documented_ones() {
    let documented = first_cells(&section("### Rules"));
    let code: Vec<String> = Rule::NAMES.iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(
        documented, code,
        "docs/contract.md's rules and vocab::Rule differ"
    );
}

#[test]
fn stats_line_fields_are_the_documented_ones() {
    let stats = serde_json::to_value(Stats::default()).expect("stats serialise");
    let mut code: Vec<String> = stats
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    let sink = serde_json::to_value(SinkStats::default()).expect("serialises");
    code.extend(
        sink.as_object()
            .expect("an object")
            .keys()
            .map(|k| format!("sinks.*.{k}")),
    );
    let documented = first_cells(&section("### Stats line"));
    assert_eq!(
        sorted(documented),
        sorted(code),
        "docs/contract.md's stats fields (left) and the code's (right) differ"
    );
    // The loss kinds, as the `lost` row and the `loss` alert field list them.
    let kinds: Vec<String> = LossCounts::default()
        .named()
        .iter()
        .map(|(k, _)| format!("`{k}`"))
        .collect();
    let listed = kinds.join(", ");
    for field in ["| `lost` |", "| `loss` |"] {
        let row = CONTRACT
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} row"));
        let tail = &row[row.rfind(": ").expect("a list of kinds") + 2..];
        assert_eq!(tail.trim_end_matches(" |"), listed, "{row}");
    }
}

fn detector(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_detector"))
        .args(args)
        .env("DETECTOR_LOG", "error")
        .output()
        .expect("running detector")
}

/// The names listed under `Commands:` (`run`) or `Options:` (`--config`) in a `-h` text.
fn help_names(help: &str, list: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| *l != list)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter_map(|l| {
            let entry = l.trim_start();
            if list == "Options:" {
                entry
                    .split([' ', ','])
                    .find(|w| w.starts_with("--"))
                    .map(str::to_owned)
            } else {
                // Entries are indented by two; wrapped descriptions by more.
                (l.len() - entry.len() == 2)
                    .then(|| entry.split_whitespace().next().map(str::to_owned))
                    .flatten()
            }
        })
        .collect()
}

#[test]
fn subcommands_and_flags_are_the_documented_ones() {
    let help = String::from_utf8(detector(&["-h"]).stdout).expect("utf-8");
    let commands: BTreeSet<String> = first_cells(&section("## Command line"))
        .iter()
        .filter_map(|c| c.strip_prefix("detector ").map(str::to_owned))
        .collect();
    assert_eq!(help_names(&help, "Commands:"), commands, "{help}");

    // Flag -> the subcommands the table says take it.
    let rows: Vec<(String, BTreeSet<String>)> = section("## Command line")
        .iter()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let of = cells[2]
                .split(", ")
                .map(|c| c.trim_matches('`').to_owned())
                .collect();
            (cells[1].trim_matches('`').to_owned(), of)
        })
        .collect();
    for command in commands.iter().filter(|c| *c != "help") {
        let out = detector(&[command, "-h"]);
        let help = String::from_utf8(out.stdout).expect("utf-8");
        let mut flags = help_names(&help, "Options:");
        flags.remove("--help");
        flags.remove("--version");
        let documented: BTreeSet<String> = rows
            .iter()
            .filter(|(_, of)| of.contains(command))
            .map(|(flag, _)| flag.clone())
            .collect();
        assert_eq!(flags, documented, "flags of {command}:\n{help}");
    }
}

#[test]
fn exit_codes_are_the_documented_ones() {
    let codes = first_cells(&section("## Exit codes"));
    assert!(codes.is_empty(), "exit codes are plain numbers: {codes:?}");
    let documented: Vec<&str> = section("## Exit codes")
        .iter()
        .filter_map(|l| l.strip_prefix("| ")?.split(' ').next())
        .filter(|c| c.parse::<u8>().is_ok())
        .collect();
    assert_eq!(documented, ["0", "1", "2"]);

    assert_eq!(detector(&["--version"]).status.code(), Some(0));
    // Bad usage.
    assert_eq!(detector(&["run", "--no-such-flag"]).status.code(), Some(2));
    // Bad policy: names the file.
    let dir = std::env::temp_dir().join(format!("detector-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("bad.toml");
    std::fs::write(&policy, "mode = \"loud\"\n").expect("write policy");
    let out = detector(&["check-config", policy.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
    // A runtime failure, with one line saying why.
    let missing = dir.join("missing.jsonl");
    let out = detector(&["replay", missing.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("detector: "));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ready_and_stats_lines_are_the_documented_ones() {
    let text = section("## Lines on stderr").join("\n");
    for line in [
        "`detector ready`",
        "`detector learning`",
        "`detector stats `",
    ] {
        assert!(text.contains(line), "docs/contract.md does not name {line}");
    }
    // The code prints exactly these (the daemon and learn modules own them).
    let daemon = include_str!("../src/daemon.rs");
    assert!(daemon.contains("eprintln!(\"detector ready\")"));
    assert!(daemon.contains("eprintln!(\"detector stats {stats}\")"));
    assert!(include_str!("../src/learn.rs").contains("eprintln!(\"detector learning\")"));
}
