//! A real Prometheus Alertmanager receives the alert of a JVM shell spawn.
//!
//! Debian's `prometheus-alertmanager` runs on loopback with a null receiver and clustering
//! off; the daemon has an `alertmanager` sink pointed at it. A JVM runs a shell. Proves: the
//! alert is in Alertmanager's own API (`GET /api/v2/alerts`), active, with the labels built
//! from the alert (`alertname` = the rule, `severity`, `host`, `incident_id`, `action`), the
//! summary as an annotation and `startsAt` = the alert's time; the sink counted it sent.
//! Skips (fails under `CI=true`) when the binary is missing: `cargo xtask setup` installs it.

use std::time::{Duration, Instant};

use integration_tests::{
    alert, assert_nothing_lost,
    receivers::{sink_count, toml_str, Alertmanager, DELIVERY_TIMEOUT},
    require_kernel_support, Detector, Mode, Policy, ScratchDir, TestCgroup,
};
use serde_json::Value;

#[test]
fn alertmanager_receives_the_shell_spawn_alert() {
    if !require_kernel_support() {
        return;
    }
    let Some(am) = Alertmanager::start() else {
        return;
    };
    let scratch = ScratchDir::new("sinks-alertmanager");
    let policy = format!(
        "{}\n[delivery]\nspool_dir = {}\n\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\n\
         type = \"alertmanager\"\nurl = {}\n",
        Policy::new(Mode::Monitor).to_toml(),
        toml_str(&scratch.file("spool").to_string_lossy()),
        toml_str(&am.url()),
    );
    let cgroup = TestCgroup::new("sinks-alertmanager");
    let mut detector = Detector::start(&policy, Mode::Monitor, &cgroup);

    let printed = alert::spawn_shell_alert(&detector, &cgroup, &scratch);
    let incident = printed["incident_id"].as_str().expect("incident_id");

    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let found: Value = loop {
        let alerts = am.alerts();
        let hit = alerts.as_array().and_then(|list| {
            list.iter()
                .find(|a| a["labels"]["incident_id"].as_str() == Some(incident))
                .cloned()
        });
        if let Some(hit) = hit {
            break hit;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager never got incident {incident}: {alerts:#}\n{}\n{}",
            detector.logs(),
            am.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    let labels = &found["labels"];
    assert_eq!(labels["alertname"], "jvm_shell_spawn", "{found:#}");
    assert_eq!(labels["severity"], printed["severity"], "{found:#}");
    assert_eq!(labels["host"], printed["host"], "{found:#}");
    assert_eq!(labels["action"], "reported", "{found:#}");
    assert_eq!(labels["source"], "detector", "{found:#}");
    assert_eq!(
        found["annotations"]["summary"], printed["summary"],
        "{found:#}"
    );
    assert_eq!(found["status"]["state"], "active", "{found:#}");
    // Alertmanager prints times its own way (milliseconds); the second must match.
    let starts = found["startsAt"].as_str().expect("startsAt");
    let time = printed["time"].as_str().expect("time");
    assert_eq!(
        starts.get(..19),
        time.get(..19),
        "startsAt {starts} vs time {time}"
    );

    let stats = detector.stop();
    assert_nothing_lost(&stats);
    assert_eq!(sink_count(&stats, "alertmanager", "sent"), 1, "{stats}");
    assert_eq!(sink_count(&stats, "alertmanager", "failed"), 0, "{stats}");
}
