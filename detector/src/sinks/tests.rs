//! Shared sample data for the sinks' unit tests, and the dispatcher's own tests: filters,
//! ids, the spool across a restart and the order of delivery, with the file sink as the
//! receiver (no network).

use std::{path::PathBuf, time::Duration};

use super::*;
use crate::{
    alert::{Ancestor, Container, Kubernetes, ProcessInfo, SCHEMA},
    policy::{DeliveryOverrides, SinkDelivery},
    vocab::{Action, Rule, Severity},
};

/// The README's example alert.
pub(crate) fn sample_alert() -> Alert {
    Alert {
        schema: SCHEMA.to_owned(),
        time: "2026-11-23T01:04:22.304226Z".to_owned(),
        host: "node-1".to_owned(),
        incident_id: "be2ca6590428fb93".to_owned(),
        rule: Rule::JvmShellSpawn,
        severity: Severity::Critical,
        summary: "java (pid 4242) spawned a shell: /bin/sh -c id".to_owned(),
        action: Action::Reported,
        class: Some("shell".to_owned()),
        process: Some(ProcessInfo {
            pid: 4250,
            start_time_ns: 1_179_067_651_636,
            exe: "/bin/sh".to_owned(),
            argv: vec!["/bin/sh".to_owned(), "-c".to_owned(), "id".to_owned()],
            uid: Some(0),
        }),
        jvm: Some(ProcessInfo {
            pid: 4242,
            start_time_ns: 1_179_000_967_946,
            exe: "/usr/lib/jvm/java-17-openjdk-amd64/bin/java".to_owned(),
            argv: vec!["java".to_owned(), "-jar".to_owned(), "app.jar".to_owned()],
            uid: None,
        }),
        ancestry: vec![Ancestor {
            pid: 4242,
            exe: "/usr/lib/jvm/java-17-openjdk-amd64/bin/java".to_owned(),
        }],
        network: None,
        container: Some(Container {
            cgroup: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-4b1c9a7e2f6d8b0a3c5e7f9a1b3d5f7e9a0c2e4f6a8b0c1d3e5f7a9b1c3d5e7f.scope".to_owned(),
            id: Some(
                "4b1c9a7e2f6d8b0a3c5e7f9a1b3d5f7e9a0c2e4f6a8b0c1d3e5f7a9b1c3d5e7f".to_owned(),
            ),
            name: Some("app".to_owned()),
            image: Some("registry.example/shop:1.2".to_owned()),
            runtime: Some("containerd".to_owned()),
        }),
        kubernetes: Some(Kubernetes {
            pod: Some("shop-7d9f".to_owned()),
            namespace: Some("shop".to_owned()),
            uid: Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".to_owned()),
        }),
        loss: None,
        // Keys added to the record later keep their "absent" values.
        ..Alert::sensor_loss("node-1", std::time::SystemTime::UNIX_EPOCH, &[])
    }
}

pub(crate) fn sample_envelope() -> Envelope {
    let message = Message::Alert(Box::new(sample_alert()));
    Envelope {
        seq: 1,
        id: alert_id(&message),
        message,
    }
}

#[test]
fn alert_ids_are_stable_and_distinct() {
    let a = Message::Alert(Box::new(sample_alert()));
    assert_eq!(alert_id(&a), alert_id(&a.clone()));
    assert_eq!(alert_id(&a).len(), 32);
    let mut other = sample_alert();
    other.time = "2026-11-23T01:04:22.304227Z".to_owned();
    assert_ne!(alert_id(&a), alert_id(&Message::Alert(Box::new(other))));
    // Through the spool and back, the id is the same.
    let json = serde_json::to_string(&a).expect("json");
    let back: Message = serde_json::from_str(&json).expect("parse");
    assert_eq!(alert_id(&back), alert_id(&a));
}

fn file_sink(name: &str, path: PathBuf, min: Severity, rules: Option<&[Rule]>) -> SinkPolicy {
    SinkPolicy {
        name: name.to_owned(),
        min_severity: min,
        rules: rules.map(<[Rule]>::to_vec),
        target: SinkTarget::File {
            path,
            max_bytes: 0,
            keep: 0,
        },
        overrides: DeliveryOverrides::default(),
    }
}

fn delivery(spool_dir: PathBuf, queue: usize) -> DeliveryPolicy {
    DeliveryPolicy {
        spool_dir,
        journal_max_bytes: 1 << 30,
        defaults: SinkDelivery {
            timeout: Duration::from_secs(1),
            give_up_after: Duration::from_secs(3600),
            queue,
            rate_per_minute: 0,
            dedup_window: Duration::from_secs(600),
        },
    }
}

fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "detector-sinks-test-{}-{label}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn numbered(n: usize) -> Alert {
    let mut alert = sample_alert();
    alert.time = format!("2026-11-23T01:04:{n:02}.000000Z");
    alert.summary = format!("alert {n}");
    alert
}

fn summaries(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let a: Alert = serde_json::from_str(l).expect("alert line");
            a.summary
        })
        .collect()
}

#[tokio::test]
async fn filters_choose_the_sinks() {
    let dir = scratch("filters");
    let (all, high, chain) = (dir.join("all"), dir.join("high"), dir.join("chain"));
    let sinks = vec![
        file_sink("all", all.clone(), Severity::Low, None),
        file_sink("high", high.clone(), Severity::High, None),
        file_sink(
            "chain",
            chain.clone(),
            Severity::Low,
            Some(&[Rule::ExploitChain]),
        ),
    ];
    let mut dispatcher =
        Dispatcher::start(&sinks, &delivery(dir.join("spool"), 10)).expect("start");
    let mut medium = numbered(1);
    medium.severity = Severity::Medium;
    dispatcher.send(&medium);
    dispatcher.send(&numbered(2));
    let stats = dispatcher
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stop");
    assert_eq!(summaries(&all), ["alert 1", "alert 2"]);
    assert_eq!(summaries(&high), ["alert 2"]);
    assert!(summaries(&chain).is_empty());
    assert_eq!(stats["all"].sent, 2);
    assert_eq!(stats["high"].sent, 1);
    assert_eq!(stats["chain"], SinkStats::default());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sink that cannot deliver keeps everything in the journal across a restart, and the next
/// start sends it first, in order, before newer alerts; the journal is empty afterwards.
#[tokio::test]
async fn the_journal_survives_a_restart_in_order() {
    let dir = scratch("restart");
    // A directory where the file should be: every write fails.
    let out = dir.join("out.jsonl");
    std::fs::create_dir_all(&out).expect("blocker");
    let spool_dir = dir.join("spool");
    let sinks = vec![file_sink("local", out.clone(), Severity::Low, None)];
    // Queue of 2: the rest waits in the journal straight away.
    let mut dispatcher = Dispatcher::start(&sinks, &delivery(spool_dir.clone(), 2)).expect("start");
    for n in 1..=5 {
        dispatcher.send(&numbered(n));
    }
    let stats = dispatcher
        .shutdown(Duration::from_millis(300))
        .await
        .expect("stop");
    assert_eq!(stats["local"].sent, 0);
    assert_eq!(stats["local"].spooled, 5, "{stats:?}");
    assert_eq!(stats["local"].dropped, 0);
    assert!(!segments(&spool_dir).is_empty(), "kept on disk");

    // The receiver is back.
    std::fs::remove_dir(&out).expect("unblock");
    let mut dispatcher = Dispatcher::start(&sinks, &delivery(spool_dir.clone(), 2)).expect("start");
    dispatcher.send(&numbered(6));
    let stats = dispatcher
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stop");
    assert_eq!(
        summaries(&out),
        ["alert 1", "alert 2", "alert 3", "alert 4", "alert 5", "alert 6"]
    );
    assert_eq!(stats["local"].sent, 6);
    assert!(
        segments(&spool_dir).is_empty(),
        "{:?}",
        segments(&spool_dir)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What an earlier version left in its spool is moved into the journal and delivered, in
/// order, before new alerts; the old spool directory goes.
#[tokio::test]
async fn an_old_spool_is_moved_into_the_journal() {
    let dir = scratch("migrate");
    let out = dir.join("out.jsonl");
    let spool_dir = dir.join("spool");
    let old = spool::Spool::new(&spool_dir, "local");
    for n in [3, 1] {
        let message = Message::Alert(Box::new(numbered(n as usize)));
        let envelope = Envelope {
            seq: n,
            id: alert_id(&message),
            message,
        };
        old.write(&envelope, false).expect("old spool");
    }
    let sinks = vec![file_sink("local", out.clone(), Severity::Low, None)];
    let mut dispatcher =
        Dispatcher::start(&sinks, &delivery(spool_dir.clone(), 10)).expect("start");
    dispatcher.send(&numbered(7));
    let stats = dispatcher
        .shutdown(Duration::from_secs(5))
        .await
        .expect("stop");
    assert_eq!(summaries(&out), ["alert 1", "alert 3", "alert 7"]);
    assert_eq!(stats["local"].sent, 3);
    assert!(!old.dir().exists(), "the old spool is gone");
    assert!(segments(&spool_dir).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The journal's segment files.
fn segments(spool_dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(spool_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "seg"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_missing_secret_names_the_sink_and_key_not_the_value() {
    let dir = scratch("secret");
    let sinks = vec![SinkPolicy {
        name: "oncall".to_owned(),
        min_severity: Severity::Low,
        rules: None,
        target: SinkTarget::PagerDuty {
            url: "http://127.0.0.1:9/".to_owned(),
            routing_key: crate::policy::SecretRef {
                key: "sinks[1].routing_key_env".to_owned(),
                source: crate::policy::SecretSource::Env(
                    "DETECTOR_TEST_SURELY_UNSET_VARIABLE".to_owned(),
                ),
            },
        },
        overrides: DeliveryOverrides::default(),
    }];
    let err = Dispatcher::start(&sinks, &delivery(dir.join("spool"), 10)).expect_err("no key");
    assert_eq!(
        err.to_string(),
        "sink \"oncall\": sinks[1].routing_key_env: the environment variable \
         DETECTOR_TEST_SURELY_UNSET_VARIABLE is not set"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
