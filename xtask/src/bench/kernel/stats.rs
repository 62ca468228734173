//! The kernel's BPF statistics: switching them on, and reading a tool's counters from the
//! fds of its programs.

use std::{collections::BTreeMap, fs, path::Path, process::Command};

use anyhow::{bail, ensure, Context as _, Result};
use serde_json::Value;

use crate::command_line;

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

// === program statistics ===

/// `run_time_ns` and `run_cnt` of one program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counters {
    pub(super) ns: u64,
    pub(super) runs: u64,
}

/// The counters of every program a process holds an fd of, by program id.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ProgStats(pub(super) BTreeMap<u32, Counters>);

/// Per program id: what it added during a workload.
pub(super) type Delta = BTreeMap<u32, Counters>;

impl ProgStats {
    /// Reads `/proc/PID/fdinfo` of every BPF program fd of `pid`. Reading files starts no
    /// process, so taking a snapshot trips none of the hooks being measured.
    pub(super) fn read(pid: u32) -> Result<Self> {
        let mut stats = Self::default();
        for fd in prog_fds(pid)? {
            let path = format!("/proc/{pid}/fdinfo/{fd}");
            // An fd closed since the listing is not a program the tool still runs.
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let (id, counters) = parse_fdinfo(&text).with_context(|| format!("reading {path}"))?;
            stats.0.insert(id, counters);
        }
        ensure!(
            !stats.0.is_empty(),
            "process {pid} holds no BPF programs (is it still running?)"
        );
        Ok(stats)
    }

    pub(super) fn since(&self, before: &Self) -> Result<Delta> {
        let mut delta = Delta::new();
        for (id, now) in &self.0 {
            let then = before.0.get(id).copied().unwrap_or_default();
            ensure!(
                now.ns >= then.ns && now.runs >= then.runs,
                "the counters of program {id} went backwards: are the statistics off?"
            );
            delta.insert(
                *id,
                Counters {
                    ns: now.ns - then.ns,
                    runs: now.runs - then.runs,
                },
            );
        }
        if let Some(gone) = before.0.keys().find(|id| !self.0.contains_key(id)) {
            bail!("program {gone} was unloaded during the workload");
        }
        Ok(delta)
    }
}

/// The fds of `pid` that are BPF programs (links and maps also carry a `prog_id` or are
/// BPF objects; only `anon_inode:bpf-prog` is a program).
fn prog_fds(pid: u32) -> Result<Vec<String>> {
    let dir = format!("/proc/{pid}/fd");
    let mut fds = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        let entry = entry.with_context(|| format!("listing {dir}"))?;
        if fs::read_link(entry.path())
            .is_ok_and(|target| target == Path::new("anon_inode:bpf-prog"))
        {
            fds.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(fds)
}

/// `prog_id`, `run_time_ns` and `run_cnt` from a program fd's fdinfo.
fn parse_fdinfo(text: &str) -> Result<(u32, Counters)> {
    let field = |key: &str| -> Result<u64> {
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .with_context(|| format!("no `{key}` (a kernel older than 5.1?)"))?;
        value
            .trim()
            .parse()
            .with_context(|| format!("`{key}:{value}` is not a number"))
    };
    let id = u32::try_from(field("prog_id")?).context("prog_id out of range")?;
    Ok((
        id,
        Counters {
            ns: field("run_time_ns")?,
            runs: field("run_cnt")?,
        },
    ))
}

/// Program id → name, from bpftool. The kernel keeps 15 characters of a name
/// (`sched_process_e` is exec or exit), so where the name is cut and the program hangs on a
/// tracepoint whose name it starts with, the tracepoint's name stands in: bpftool tells
/// which from the program's link (tp_btf) or perf event (bpftrace's tracepoints). Run
/// before the measurement: bpftool is a process, and its exec would trip the hooks.
pub(super) fn program_names(pid: u32) -> Result<BTreeMap<u32, String>> {
    let ids: Vec<u32> = ProgStats::read(pid)?.0.into_keys().collect();
    let progs = bpftool_json(&["prog", "show"])?;
    let mut tracepoints = BTreeMap::new();
    for (what, key) in [
        (["link", "show"], "tp_name"),
        (["perf", "show"], "tracepoint"),
    ] {
        for entry in bpftool_json(&what)?.as_array().into_iter().flatten() {
            if let (Some(id), Some(tracepoint)) = (entry["prog_id"].as_u64(), entry[key].as_str()) {
                tracepoints.insert(id, tracepoint.to_owned());
            }
        }
    }
    let mut names = BTreeMap::new();
    for id in ids {
        let name = progs
            .as_array()
            .into_iter()
            .flatten()
            .find(|prog| prog["id"].as_u64() == Some(u64::from(id)))
            .and_then(|prog| prog["name"].as_str())
            .unwrap_or_default();
        let name = match tracepoints.get(&u64::from(id)) {
            Some(tp) if name.len() == 15 && tp.starts_with(name) => tp.clone(),
            _ if name.is_empty() => format!("prog {id}"),
            _ => name.to_owned(),
        };
        names.insert(id, name);
    }
    Ok(names)
}

/// `bpftool ARGS --json`, parsed.
fn bpftool_json(args: &[&str]) -> Result<Value> {
    let mut cmd = Command::new("bpftool");
    cmd.args(args).arg("--json");
    let out = cmd.output().with_context(|| {
        format!(
            "running `{}` (bpftool is installed by `cargo xtask setup`)",
            command_line(&cmd)
        )
    })?;
    ensure!(
        out.status.success(),
        "`{}` failed ({}): {}",
        command_line(&cmd),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("`{}` printed no JSON", command_line(&cmd)))
}

// === impl StatsSwitch ===

/// `kernel.bpf_stats_enabled = 1` while alive; the previous value comes back on drop, on
/// errors too. (The kernel counts nothing with it off: the accounting has a cost of its
/// own, which is in every number here, the floor's included.)
#[derive(Debug)]
pub(super) struct StatsSwitch {
    previous: String,
}

impl StatsSwitch {
    pub(super) fn on() -> Result<Self> {
        let previous = fs::read_to_string(STATS_SYSCTL)
            .with_context(|| format!("reading {STATS_SYSCTL}"))?
            .trim()
            .to_owned();
        fs::write(STATS_SYSCTL, "1").with_context(|| format!("writing 1 to {STATS_SYSCTL}"))?;
        Ok(Self { previous })
    }
}

impl Drop for StatsSwitch {
    fn drop(&mut self) {
        if let Err(err) = fs::write(STATS_SYSCTL, &self.previous) {
            eprintln!(
                "warning: restoring {STATS_SYSCTL} to {}: {err}",
                self.previous
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_of_a_program_is_read() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1044\nprog_type:\t5\n\
                    prog_jited:\t1\nprog_tag:\tc26c3f0909892784\nmemlock:\t4096\nprog_id:\t33\n\
                    run_time_ns:\t17493\nrun_cnt:\t39\nrecursion_misses:\t0\nverified_insns:\t42\n";
        assert_eq!(
            parse_fdinfo(text).expect("parses"),
            (
                33,
                Counters {
                    ns: 17493,
                    runs: 39
                }
            )
        );
        assert!(parse_fdinfo("prog_id:\t1\n").is_err());
    }
}
