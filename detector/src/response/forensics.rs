//! What an incident responder wants from a JVM before it is killed or while it is frozen:
//! read from /proc, bounded, and returned as JSON for the `exploit_chain` alert.

use std::{fs, path::Path};

use serde_json::{json, Value};

/// Lines of `/proc/PID/maps` kept (the JVM maps thousands; the head shows the executable
/// and the first libraries, enough to spot an injected agent or a deleted mapping).
const MAPS_LINES: usize = 64;
/// Open sockets listed at most.
const SOCKETS: usize = 64;

/// The socket inodes among a process's open files (`/proc/PID/fd/*` -> `socket:[N]`).
fn socket_inodes(proc_dir: &Path) -> Vec<u64> {
    let Ok(fds) = fs::read_dir(proc_dir.join("fd")) else {
        return Vec::new();
    };
    fds.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Parses `/proc/net/tcp`-style text into (local, remote, state, inode) for `inodes`.
pub fn sockets_in(text: &str, inodes: &[u64], v6: bool) -> Vec<Value> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = f.get(9)?.parse().ok()?;
            if !inodes.contains(&inode) {
                return None;
            }
            Some(json!({
                "local": endpoint(f.get(1)?, v6)?,
                "remote": endpoint(f.get(2)?, v6)?,
                "state": tcp_state(f.get(3)?),
                "inode": inode,
            }))
        })
        .collect()
}

/// `0100007F:0599` → `127.0.0.1:1433` (the kernel prints each 32-bit word in host order).
fn endpoint(hex: &str, v6: bool) -> Option<String> {
    let (addr, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::new();
    for i in (0..addr.len()).step_by(8) {
        let word = u32::from_str_radix(addr.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    let ip: std::net::IpAddr = if v6 {
        let arr: [u8; 16] = bytes.try_into().ok()?;
        let v6 = std::net::Ipv6Addr::from(arr);
        v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
    } else {
        let arr: [u8; 4] = bytes.try_into().ok()?;
        std::net::Ipv4Addr::from(arr).into()
    };
    Some(match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
    })
}

fn tcp_state(hex: &str) -> &'static str {
    match hex {
        "01" => "established",
        "02" => "syn_sent",
        "03" => "syn_recv",
        "04" => "fin_wait1",
        "05" => "fin_wait2",
        "06" => "time_wait",
        "07" => "close",
        "08" => "close_wait",
        "09" => "last_ack",
        "0A" => "listen",
        "0B" => "closing",
        _ => "unknown",
    }
}

/// Captures cmdline, exe, cwd, the head of the memory map and the open TCP sockets of `pid`.
pub fn capture(pid: u32) -> Value {
    let dir = Path::new("/proc").join(pid.to_string());
    let text = |name: &str| fs::read_to_string(dir.join(name)).ok();
    let link = |name: &str| {
        fs::read_link(dir.join(name))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    };
    let cmdline = crate::sensors::procfs::read_cmdline(&dir);
    let maps: Vec<String> = text("maps")
        .map(|m| m.lines().take(MAPS_LINES).map(str::to_owned).collect())
        .unwrap_or_default();
    let inodes = socket_inodes(&dir);
    let mut sockets = Vec::new();
    for (file, v6) in [("net/tcp", false), ("net/tcp6", true)] {
        if let Some(t) = text(file) {
            sockets.extend(sockets_in(&t, &inodes, v6));
        }
    }
    sockets.truncate(SOCKETS);
    json!({
        "pid": pid,
        "cmdline": cmdline,
        "exe": link("exe"),
        "cwd": link("cwd"),
        "maps_head": maps,
        "open_sockets": sockets,
        "open_socket_count": inodes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0599 0100007F:E0D2 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1\n   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1\n";
        let got = sockets_in(text, &[4242], false);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["local"], "127.0.0.1:1433");
        assert_eq!(got[0]["remote"], "127.0.0.1:57554");
        assert_eq!(got[0]["state"], "established");
    }

    #[test]
    fn parses_v4_mapped_tcp6() {
        let text = "hdr\n 0: 0000000000000000FFFF00000100007F:0599 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 77 1\n";
        let got = sockets_in(text, &[77], true);
        assert_eq!(got[0]["local"], "127.0.0.1:1433");
        assert_eq!(got[0]["state"], "listen");
    }

    #[test]
    fn captures_this_process() {
        let v = capture(std::process::id());
        assert!(v["cmdline"].as_array().is_some_and(|a| !a.is_empty()));
        assert!(v["exe"].is_string());
        assert!(v["maps_head"].as_array().is_some_and(|m| !m.is_empty()));
    }
}
