//! The Debian package (`cargo xtask package`; `cargo xtask test` builds it and passes its path
//! as `DETECTOR_DEB`) installs, upgrades, removes and purges the way Debian users expect.
//!
//! dpkg runs on a scratch root (`--root`, with `--force-script-chrootless` so the maintainer
//! scripts run with `DPKG_ROOT` set): the host's own dpkg database, units and services are never
//! touched, while dpkg itself, the real maintainer scripts and deb-systemd-helper do the work.
//! - install: the binary runs, the policy is the commented default and passes `check-config`,
//!   the unit is in place and enabled (multi-user.target.wants);
//! - upgrade to a newer version: the administrator's edit of the policy (a conffile) is kept,
//!   the binary is replaced, the service stays enabled;
//! - remove: the binary and unit are gone, the edited policy stays;
//! - purge: the policy, /etc/detector, the state directory (the alert spool) and the
//!   enablement are gone, and dpkg no longer knows the package.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use integration_tests::{find_on_path, skip, ScratchDir};

/// The package under test, or `None` (after saying why) when it was not built. Under
/// `CI=true` a missing package fails the test: CI must prove the package.
fn package() -> Option<PathBuf> {
    let reason = match std::env::var_os("DETECTOR_DEB").map(PathBuf::from) {
        Some(deb) if deb.is_file() => {
            if !testkit::is_root() {
                "dpkg --root needs root to set the owners of the installed files".to_owned()
            } else if find_on_path("dpkg").is_none() || find_on_path("deb-systemd-helper").is_none()
            {
                "dpkg and deb-systemd-helper (init-system-helpers) are needed".to_owned()
            } else {
                return Some(deb);
            }
        }
        Some(deb) => format!("DETECTOR_DEB={} does not exist", deb.display()),
        None => {
            "DETECTOR_DEB is not set: run `cargo xtask package` and point it at the .deb".to_owned()
        }
    };
    skip(&reason);
    None
}

/// A directory dpkg accepts as `--root`: an empty database.
fn scratch_root() -> ScratchDir {
    let root = ScratchDir::new("deb-root");
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/log",
    ] {
        std::fs::create_dir_all(root.path().join(dir)).expect("creating the dpkg root");
    }
    std::fs::write(root.path().join("var/lib/dpkg/status"), "").expect("dpkg status");
    root
}

/// Runs `dpkg --root ROOT ARGS`, failing the test with dpkg's output if it fails.
fn dpkg(root: &Path, args: &[&str]) -> String {
    run(Command::new("dpkg")
        .arg("--root")
        .arg(root)
        .arg("--log")
        .arg(root.join("var/log/dpkg.log"))
        // libc6 and friends are installed on the host, not in the scratch database; scripts
        // run on the host with DPKG_ROOT pointing at the scratch root.
        .args([
            "--force-depends",
            "--force-script-chrootless",
            "--force-not-root",
        ])
        .args(args))
}

/// `dpkg-query`'s status and version of the package in `root` ("" when unknown).
fn status(root: &Path) -> String {
    let out = Command::new("dpkg-query")
        .arg("--admindir")
        .arg(root.join("var/lib/dpkg"))
        .args(["-W", "-f", "${Status} ${Version}", "detector"])
        .output()
        .expect("dpkg-query runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The same package with another version: unpacked and rebuilt with dpkg-deb, which is how
/// an upgrade looks to dpkg (only the version and the binary's bytes differ).
fn repack(deb: &Path, version: &str, dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    run(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    let control = tree.join("DEBIAN/control");
    let text = std::fs::read_to_string(&control).expect("control");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("Version: ") {
                format!("Version: {version}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&control, text).expect("control");
    // A different binary, as an upgrade brings: the marker shows which one is installed.
    let bin = tree.join("usr/bin/detector");
    let mut bytes = std::fs::read(&bin).expect("binary");
    bytes.extend_from_slice(b"\0upgrade-marker");
    std::fs::write(&bin, bytes).expect("binary");
    let out = dir.join(format!("detector_{version}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(&out));
    out
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

const UNIT: &str = "lib/systemd/system/detector.service";
const WANTS: &str = "etc/systemd/system/multi-user.target.wants/detector.service";
const POLICY: &str = "etc/detector/policy.toml";

#[test]
fn installs_upgrades_removes_and_purges() {
    let Some(deb) = package() else { return };
    let root_dir = scratch_root();
    let root = root_dir.path();
    let work = ScratchDir::new("deb-work");

    // Install.
    dpkg(root, &["--install", deb.to_str().expect("utf-8 path")]);
    let installed = status(root);
    assert!(
        installed.starts_with("install ok installed "),
        "{installed}"
    );
    let version = run(Command::new(root.join("usr/bin/detector")).arg("--version"));
    assert!(
        version.starts_with("detector "),
        "the installed binary runs: {version}"
    );
    let checked = run(Command::new(root.join("usr/bin/detector"))
        .arg("check-config")
        .arg(root.join(POLICY)));
    assert!(!checked.is_empty(), "check-config says what it checked");
    let shipped = std::fs::read_to_string(
        integration_tests::workspace_root().join("detector/policy/default.toml"),
    )
    .expect("default policy");
    assert_eq!(
        std::fs::read_to_string(root.join(POLICY)).expect("installed policy"),
        shipped,
        "the conffile is the commented default policy"
    );
    assert!(root.join(UNIT).is_file(), "the unit is installed");
    let wants = root.join(WANTS);
    assert_eq!(
        std::fs::read_link(&wants).unwrap_or_else(|e| panic!(
            "the service is enabled on install ({}): {e}",
            wants.display()
        )),
        Path::new("/").join(UNIT),
    );
    let conffiles = run(Command::new("dpkg-query")
        .arg("--admindir")
        .arg(root.join("var/lib/dpkg"))
        .args(["-W", "-f", "${Conffiles}", "detector"]));
    assert!(
        conffiles.contains("/etc/detector/policy.toml"),
        "{conffiles}"
    );

    // The administrator edits the policy; the daemon has spooled alerts.
    let edited = format!("{shipped}\n# edited by the administrator\n");
    std::fs::write(root.join(POLICY), &edited).expect("editing the policy");
    let spool = root.join("var/lib/private/detector/spool");
    std::fs::create_dir_all(&spool).expect("state dir");
    std::fs::write(spool.join("pending.jsonl"), "{}\n").expect("spool file");

    // Upgrade.
    let newer = repack(
        &deb,
        &format!(
            "{}+upgrade1",
            installed.rsplit(' ').next().unwrap_or_default()
        ),
        work.path(),
    );
    dpkg(root, &["--install", newer.to_str().expect("utf-8 path")]);
    let upgraded = status(root);
    assert!(upgraded.ends_with("+upgrade1"), "{upgraded}");
    assert!(
        std::fs::read(root.join("usr/bin/detector"))
            .expect("binary")
            .ends_with(b"upgrade-marker"),
        "the upgrade replaced the binary"
    );
    assert_eq!(
        std::fs::read_to_string(root.join(POLICY)).expect("policy"),
        edited,
        "an upgrade keeps the administrator's policy"
    );
    // The link points at /lib/... inside the root: look at the link, not at its target.
    assert!(
        wants.symlink_metadata().is_ok(),
        "still enabled after the upgrade"
    );
    assert!(
        spool.join("pending.jsonl").is_file(),
        "an upgrade keeps the spool"
    );

    // Remove: the program goes, the configuration stays.
    dpkg(root, &["--remove", "detector"]);
    let removed = status(root);
    assert!(
        removed.starts_with("deinstall ok config-files"),
        "{removed}"
    );
    assert!(!root.join("usr/bin/detector").exists());
    assert!(!root.join(UNIT).exists());
    assert_eq!(
        std::fs::read_to_string(root.join(POLICY)).expect("policy"),
        edited,
        "remove keeps the policy"
    );

    // Purge: nothing of it is left.
    dpkg(root, &["--purge", "detector"]);
    assert_eq!(status(root), "", "dpkg forgot the package");
    for gone in [
        POLICY,
        "etc/detector",
        "var/lib/private/detector",
        "var/lib/detector",
        WANTS,
        "var/lib/systemd/deb-systemd-helper-enabled/detector.service.dsh-also",
    ] {
        assert!(
            root.join(gone).symlink_metadata().is_err(),
            "{gone} is left after purge"
        );
    }
}
