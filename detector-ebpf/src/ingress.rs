//! What arrives at a JVM: the first and third stages of a Log4Shell attack.
//!
//! `cgroup_skb/ingress`, attached (like the payload program) only to cgroups that contain a
//! JVM, looks at the first few data packets of each TCP connection:
//! - on a connection a JVM *made* (remembered by the connect hook in `egress::WATCH`), for Java
//!   class bytes (`CAFEBABE`, also after HTTP response headers): the class the JNDI
//!   reference points at. In enforce mode that packet and all later ones are dropped, so the
//!   class never arrives.
//! - on any other connection (one the JVM accepted), for the start of a lookup string
//!   (`${`, URL-encoded `%24`, JSON-escaped `\u0024`): a bounded prefilter; the daemon
//!   de-obfuscates the sample and decides whether it is a JNDI probe.
//!
//! Packet-level, so it sees the data whatever system call the JVM reads it with (Java 17
//! uses `read()`), and it runs before the JVM gets the bytes.

use aya_ebpf::{
    helpers::{bpf_get_socket_cookie, bpf_skb_cgroup_id, bpf_skb_load_bytes},
    macros::{cgroup_skb, map},
    maps::{LruHashMap, PerCpuArray},
    programs::SkBuffContext,
    EbpfContext,
};
use detector_common::{
    config::{CFG_F_BLOCK_CLASS, CFG_F_ENFORCE},
    egress::{NET_F_BLOCKED, NET_F_V4, TRANSPORT_TCP},
    event::EVENT_INBOUND,
    ingress::{
        InboundEvent, INBOUND_CLASS, INBOUND_PACKETS, INBOUND_PROBE, INBOUND_SAMPLE_LEN,
        INBOUND_SCAN_LEN,
    },
    lineage::Lineage,
};

use crate::{count_loss, egress::WATCH, header, load_len, opaque, CONFIG, EVENTS};

/// Data packets already scanned on other (accepted) connections.
#[map]
static PROBE_SEEN: LruHashMap<u64, u16> = LruHashMap::with_max_entries(16384, 0);

/// Scan window and event, per CPU (too large for the stack).
#[map]
static INBOUND_SCRATCH: PerCpuArray<InboundEvent> = PerCpuArray::with_max_entries(1, 0);

/// Bytes loaded and scanned at a time; consecutive chunks overlap so a needle that
/// straddles two is still seen whole in one of them.
const CHUNK: usize = 256;
/// Longest needle minus one.
const OVERLAP: usize = 5;

#[cgroup_skb(ingress)]
pub fn ingress_inspect(ctx: SkBuffContext) -> i32 {
    // A packet the program cannot parse is let through: outside enforce, this hook only observes.
    try_ingress(&ctx).unwrap_or(1)
}

/// What a scan looks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needle {
    /// `CA FE BA BE`.
    ClassMagic,
    /// `${`, `%24`, `\u0024`.
    Lookup,
}

fn try_ingress(ctx: &SkBuffContext) -> Result<i32, i64> {
    // Headers first: a segment without data (handshake, bare ACK, FIN) has nothing to scan
    // and nothing worth dropping, and returns before the socket lookup.
    let Some((payload_at, remote, remote_port, local_port, v4)) = tcp_payload(ctx)? else {
        return Ok(1);
    };
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let outbound = WATCH.get_ptr_mut(cookie);
    if let Some(w) = outbound {
        let w = unsafe { &mut *w };
        if w.flags & NET_F_BLOCKED != 0 {
            return Ok(0);
        }
        if w.scanned >= INBOUND_PACKETS {
            return Ok(1);
        }
    }

    let Some(ev) = INBOUND_SCRATCH.get_ptr_mut(0) else {
        return Ok(1);
    };
    let ev = unsafe { &mut *ev };
    // One precise value per IP/TCP header length would have every scan below verified once
    // per value: make it a bounded unknown (see `opaque`).
    let payload_at = opaque(&mut ev.match_at, payload_at, 0xff);

    match outbound {
        Some(w) => {
            let w = unsafe { &mut *w };
            w.scanned += 1;
            let Some(found) = scan(ctx, ev, payload_at, Needle::ClassMagic) else {
                return Ok(1);
            };
            let mut flags = if v4 { NET_F_V4 } else { 0 };
            let mut verdict = 1;
            if let Some(cfg) = CONFIG.get(0) {
                if cfg.flags & CFG_F_ENFORCE != 0 && cfg.flags & CFG_F_BLOCK_CLASS != 0 {
                    // The class must never reach the JVM: this segment, its retransmissions
                    // and every later data segment on this connection are dropped.
                    w.flags |= NET_F_BLOCKED;
                    flags |= NET_F_BLOCKED;
                    verdict = 0;
                }
            }
            let lineage = w.lineage;
            let tgid = w.tgid;
            emit(
                ctx,
                ev,
                found,
                INBOUND_CLASS,
                lineage,
                tgid,
                flags,
                cookie,
                &remote,
                remote_port,
                local_port,
                payload_at,
            );
            Ok(verdict)
        }
        None => {
            let seen = unsafe { PROBE_SEEN.get(cookie) }.map_or(0, |n| *n);
            if seen >= INBOUND_PACKETS {
                return Ok(1);
            }
            let _ = PROBE_SEEN.insert(cookie, seen + 1, 0);
            let Some(found) = scan(ctx, ev, payload_at, Needle::Lookup) else {
                return Ok(1);
            };
            let flags = if v4 { NET_F_V4 } else { 0 };
            emit(
                ctx,
                ev,
                found,
                INBOUND_PROBE,
                Lineage::default(),
                0,
                flags,
                cookie,
                &remote,
                remote_port,
                local_port,
                payload_at,
            );
            Ok(1)
        }
    }
}

/// Offset of the TCP payload, the remote address and both ports; `None` for anything that
/// is not a TCP segment carrying data.
#[inline(always)]
#[expect(
    clippy::type_complexity,
    reason = "a one-use tuple, named where it is taken apart"
)]
fn tcp_payload(ctx: &SkBuffContext) -> Result<Option<(usize, [u8; 16], u16, u16, bool)>, i64> {
    let first: u8 = ctx.load(0)?;
    let mut remote = [0u8; 16];
    let (l4_at, proto, v4) = match first >> 4 {
        4 => {
            let src: [u8; 4] = ctx.load(12)?;
            remote[10] = 0xff;
            remote[11] = 0xff;
            remote[12] = src[0];
            remote[13] = src[1];
            remote[14] = src[2];
            remote[15] = src[3];
            (((first & 0x0f) as usize) * 4, ctx.load::<u8>(9)?, true)
        }
        6 => {
            remote = ctx.load(8)?;
            (40, ctx.load::<u8>(6)?, false)
        }
        _ => return Ok(None),
    };
    if u32::from(proto) != TRANSPORT_TCP {
        return Ok(None);
    }
    let ports: [u8; 4] = ctx.load(l4_at)?;
    let data_off: u8 = ctx.load(l4_at + 12)?;
    let payload_at = l4_at + ((data_off >> 4) as usize) * 4;
    if payload_at >= ctx.len() as usize {
        return Ok(None);
    }
    let remote_port = u16::from_be_bytes([ports[0], ports[1]]);
    let local_port = u16::from_be_bytes([ports[2], ports[3]]);
    Ok(Some((payload_at, remote, remote_port, local_port, v4)))
}

/// Scans the first `INBOUND_SCAN_LEN` bytes of the payload for `needle`; returns the
/// payload offset of the first match. Uses `ev.sample` as the window.
#[inline(always)]
fn scan(
    ctx: &SkBuffContext,
    ev: &mut InboundEvent,
    payload_at: usize,
    needle: Needle,
) -> Option<usize> {
    let total = (ctx.len() as usize).saturating_sub(payload_at);
    let total = if total > INBOUND_SCAN_LEN {
        INBOUND_SCAN_LEN
    } else {
        total
    };
    let mut start = 0usize;
    for _ in 0..(INBOUND_SCAN_LEN / (CHUNK - OVERLAP) + 1) {
        if start >= total {
            break;
        }
        let n = load_chunk(ctx, ev, payload_at + start, total - start)?;
        if let Some(i) = find(&ev.sample, needle) {
            // Each position would otherwise be its own verifier state in `emit`.
            return Some(opaque(&mut ev.match_at, start + i, INBOUND_SCAN_LEN - 1));
        }
        if n < CHUNK {
            break;
        }
        start += CHUNK - OVERLAP;
    }
    None
}

/// Loads up to `CHUNK` bytes at packet offset `at` into the start of `ev.sample`.
#[inline(always)]
fn load_chunk(
    ctx: &SkBuffContext,
    ev: &mut InboundEvent,
    at: usize,
    avail: usize,
) -> Option<usize> {
    for b in ev.sample[..CHUNK].iter_mut() {
        *b = 0;
    }
    let n = if avail > CHUNK { CHUNK } else { avail };
    let n = load_len(&mut ev.sample_len, n, CHUNK);
    let rc = unsafe {
        bpf_skb_load_bytes(
            ctx.as_ptr() as *const _,
            (at & 0xffff) as u32,
            ev.sample.as_mut_ptr().cast(),
            n as u32,
        )
    };
    if rc != 0 {
        return None;
    }
    Some(n)
}

/// First index of `needle` in the window (zero past the loaded bytes, and no needle
/// starts with zero). Nothing here depends on the loaded length: a branch on it would
/// refine the verifier's bounds differently at every position and multiply its states.
#[inline(always)]
fn find(buf: &[u8; INBOUND_SAMPLE_LEN], needle: Needle) -> Option<usize> {
    for i in 0..(CHUNK - OVERLAP) {
        let b = |k: usize| buf[(i + k) & (INBOUND_SAMPLE_LEN - 1)];
        let hit = match needle {
            Needle::ClassMagic => b(0) == 0xca && b(1) == 0xfe && b(2) == 0xba && b(3) == 0xbe,
            Needle::Lookup => {
                (b(0) == b'$' && b(1) == b'{')
                    || (b(0) == b'%' && b(1) == b'2' && b(2) == b'4')
                    || (b(0) == b'\\'
                        && b(1) == b'u'
                        && b(2) == b'0'
                        && b(3) == b'0'
                        && b(4) == b'2'
                        && b(5) == b'4')
            }
        };
        if hit {
            return Some(i);
        }
    }
    None
}

/// Sends the sample (from a little before the match) to the daemon.
#[expect(
    clippy::too_many_arguments,
    reason = "inlined; a struct would only be copied again"
)]
#[inline(always)]
fn emit(
    ctx: &SkBuffContext,
    ev: &mut InboundEvent,
    found: usize,
    kind: u32,
    lineage: Lineage,
    tgid: u32,
    flags: u32,
    cookie: u64,
    remote: &[u8; 16],
    remote_port: u16,
    local_port: u16,
    payload_at: usize,
) {
    // Context before the match: enough for the HTTP header name a lookup sits in.
    let before = if found > 64 { 64 } else { found };
    let from = found - before;
    let avail = (ctx.len() as usize).saturating_sub(payload_at + from);
    let n = if avail > INBOUND_SAMPLE_LEN {
        INBOUND_SAMPLE_LEN
    } else {
        avail
    };
    let n = load_len(&mut ev.sample_len, n, INBOUND_SAMPLE_LEN);
    let rc = unsafe {
        bpf_skb_load_bytes(
            ctx.as_ptr() as *const _,
            ((payload_at + from) & 0xffff) as u32,
            ev.sample.as_mut_ptr().cast(),
            n as u32,
        )
    };
    if rc != 0 {
        return;
    }
    ev.header = header(EVENT_INBOUND);
    ev.kind = kind;
    ev.tgid = tgid;
    ev.cgroup_id = unsafe { bpf_skb_cgroup_id(ctx.as_ptr() as *mut _) };
    ev.lineage = lineage;
    ev.flags = flags;
    ev.match_at = before as u32;
    ev.cookie = cookie;
    ev.remote_addr = *remote;
    ev.remote_port = remote_port;
    ev.local_port = local_port;
    ev.sample_len = n as u32;
    if EVENTS.output::<InboundEvent>(&*ev, 0).is_err() {
        count_loss(EVENT_INBOUND);
    }
}
