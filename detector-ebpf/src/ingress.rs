//! What arrives at a JVM: the first and third stages of a Log4Shell attack.
//!
//! `cgroup_skb/ingress`, attached (like the payload program) only to cgroups that contain a
//! JVM, looks at the first few data packets of each TCP connection:
//! - on a connection a JVM *made* (remembered by the connect hook in `egress::WATCH`), for Java
//!   class bytes (`CAFEBABE`, also after HTTP response headers): the class the JNDI
//!   reference points at. In enforce mode that packet and all later ones are dropped, so the
//!   class never arrives.
//! - on any other connection (one the JVM accepted), for the start of a lookup string
//!   (`${`, URL-encoded `%24`, JSON-escaped `\u0024`) anywhere in each request head, over
//!   as many packets as it takes, up to `INBOUND_HEAD_MAX` bytes (`INBOUND_CONN` keeps the
//!   place per connection). The scan is `ingress_scan`, reached by tail call: it reads the
//!   payload a word at a time and sends only a window around each match; the daemon joins
//!   the windows of a request, de-obfuscates and decides whether it is a JNDI probe.
//!
//! Packet-level, so it sees the data whatever system call the JVM reads it with (Java 17
//! uses `read()`), and it runs before the JVM gets the bytes.

use aya_ebpf::{
    helpers::{bpf_get_socket_cookie, bpf_skb_cgroup_id, bpf_skb_load_bytes},
    macros::{cgroup_skb, map},
    maps::{LruHashMap, PerCpuArray, ProgramArray},
    programs::SkBuffContext,
    EbpfContext,
};
use detector_common::{
    config::{CFG_F_BLOCK_CLASS, CFG_F_ENFORCE},
    egress::{NET_F_BLOCKED, NET_F_V4, TRANSPORT_TCP},
    event::EVENT_INBOUND,
    ingress::{
        InboundConn, InboundEvent, CONN_F_CONTINUE, CONN_F_ENDED, CONN_F_OVER, INBOUND_BEFORE,
        INBOUND_CLASS, INBOUND_F_CONTINUED, INBOUND_F_CUT, INBOUND_HEAD_MAX, INBOUND_PACKETS,
        INBOUND_PROBE, INBOUND_SAMPLE_LEN, INBOUND_SCAN_LEN, INBOUND_STATS_SLOTS,
        INBOUND_STAT_SAMPLES, INBOUND_STAT_UNINSPECTED,
    },
    lineage::Lineage,
};

use crate::{count_loss, egress::WATCH, header, load_len, opaque, CONFIG, EVENTS};

/// Where each accepted connection's current request head stands.
#[map]
static INBOUND_CONN: LruHashMap<u64, InboundConn> = LruHashMap::with_max_entries(16384, 0);

/// Per-CPU counters, `INBOUND_STAT_*`.
#[map]
static INBOUND_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(INBOUND_STATS_SLOTS, 0);

/// Slot 0: `ingress_scan`, set by the daemon after loading.
#[map]
static INBOUND_SCAN_PROG: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// The packet being scanned, handed from `ingress_inspect` to `ingress_scan` and from one
/// `ingress_scan` call to the next (a tail call keeps only the context).
#[repr(C)]
struct ScanState {
    cookie: u64,
    /// Packet offset of the TCP payload.
    payload_at: u32,
    /// Payload bytes in the packet.
    len: u32,
    /// Payload offset the scan goes on from.
    pos: u32,
    /// Payload offset the scan stops at: the packet's end, or the head's bound.
    end: u32,
    /// Request-head offset of payload byte 0.
    base: u32,
    request: u32,
    /// `NET_F_V4`.
    flags: u32,
    remote_port: u16,
    local_port: u16,
    remote: [u8; 16],
    /// Scratch for `opaque`.
    slot: u32,
    /// Non-zero when the packet ends with `\r\n\r\n`: nothing of the head follows it.
    ends_head: u32,
    /// The chunk being scanned, as words (`SCAN_CHUNK` bytes and the next word).
    words: [u64; INBOUND_SAMPLE_LEN / 8],
}

#[map]
static INBOUND_SCAN: PerCpuArray<ScanState> = PerCpuArray::with_max_entries(1, 0);

/// Scan window and event, per CPU (too large for the stack).
#[map]
static INBOUND_SCRATCH: PerCpuArray<InboundEvent> = PerCpuArray::with_max_entries(1, 0);

/// Bytes loaded and scanned at a time; consecutive chunks overlap so a needle that
/// straddles two is still seen whole in one of them.
const CHUNK: usize = 256;
/// Needle length minus one.
const OVERLAP: usize = 3;

#[cgroup_skb(ingress)]
pub fn ingress_inspect(ctx: SkBuffContext) -> i32 {
    // A packet the program cannot parse is let through: outside enforce, this hook only observes.
    try_ingress(&ctx).unwrap_or(1)
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
            let Some(found) = scan(ctx, ev, payload_at) else {
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
            // Context before the match: enough for the HTTP header name a lookup sits in.
            let before = if found > INBOUND_BEFORE {
                INBOUND_BEFORE
            } else {
                found
            };
            ev.match_at = before as u32;
            ev.offset = 0;
            ev.request = 0;
            send(
                ctx,
                ev,
                payload_at,
                found - before,
                INBOUND_CLASS,
                lineage,
                tgid,
                flags,
                cookie,
                &remote,
                remote_port,
                local_port,
            );
            Ok(verdict)
        }
        None => {
            let flags = if v4 { NET_F_V4 } else { 0 };
            start_scan(
                ctx,
                ev,
                cookie,
                payload_at,
                flags,
                &remote,
                remote_port,
                local_port,
            );
            Ok(1)
        }
    }
}

/// Adds one to an `INBOUND_STATS` counter.
#[inline(always)]
fn count(slot: u32) {
    if let Some(n) = INBOUND_STATS.get_ptr_mut(slot) {
        unsafe { *n += 1 };
    }
}

/// Whether the payload starts with a request line (`METHOD SP`: 3 to 7 capital letters and
/// a space): after a head has ended, such a packet starts the next request on the
/// connection, anything else is body.
#[inline(always)]
fn starts_request(ctx: &SkBuffContext, payload_at: usize) -> bool {
    let Ok(first) = ctx.load::<[u8; 8]>(payload_at) else {
        return false;
    };
    let mut letters = 0;
    for b in first {
        if b == b' ' {
            break;
        }
        if !b.is_ascii_uppercase() {
            return false;
        }
        letters += 1;
    }
    (3..8).contains(&letters)
}

/// Brings the connection's request state up to this packet and hands the packet to
/// `ingress_scan`.
#[expect(
    clippy::too_many_arguments,
    reason = "inlined; a struct would only be copied again"
)]
#[inline(always)]
fn start_scan(
    ctx: &SkBuffContext,
    ev: &mut InboundEvent,
    cookie: u64,
    payload_at: usize,
    flags: u32,
    remote: &[u8; 16],
    remote_port: u16,
    local_port: u16,
) {
    let len = (ctx.len() as usize).saturating_sub(payload_at) as u32;
    let conn = match INBOUND_CONN.get_ptr_mut(cookie) {
        Some(c) => c,
        None => {
            if INBOUND_CONN
                .insert(cookie, InboundConn::default(), 0)
                .is_err()
            {
                return;
            }
            let Some(c) = INBOUND_CONN.get_ptr_mut(cookie) else {
                return;
            };
            c
        }
    };
    let conn = unsafe { &mut *conn };
    if conn.flags & (CONN_F_ENDED | CONN_F_OVER) != 0 {
        if !starts_request(ctx, payload_at) {
            return;
        }
        conn.request += 1;
        conn.head_bytes = 0;
        conn.flags = 0;
    }
    let base = conn.head_bytes;
    let room = INBOUND_HEAD_MAX - base;
    let end = if len > room {
        conn.flags |= CONN_F_OVER;
        count(INBOUND_STAT_UNINSPECTED);
        room
    } else {
        len
    };
    conn.head_bytes = base + end;
    let request = conn.request;
    let Some(s) = INBOUND_SCAN.get_ptr_mut(0) else {
        return;
    };
    let s = unsafe { &mut *s };
    s.cookie = cookie;
    s.payload_at = payload_at as u32;
    s.len = len;
    s.pos = 0;
    s.end = end;
    s.base = base;
    s.request = request;
    s.flags = flags;
    s.remote = *remote;
    s.remote_port = remote_port;
    s.local_port = local_port;
    s.ends_head = (len >= 4
        && ctx
            .load::<u32>((payload_at + len as usize - 4) & 0x1ffff)
            .is_ok_and(|w| w == u32::from_le_bytes(*b"\r\n\r\n"))) as u32;
    if conn.flags & CONN_F_CONTINUE != 0 {
        // The previous packet's last sample was cut: the start of this one completes it.
        conn.flags &= !CONN_F_CONTINUE;
        emit_probe(ctx, ev, s, 0, 0, INBOUND_F_CONTINUED);
    }
    if end == 0 {
        return;
    }
    unsafe { INBOUND_SCAN_PROG.tail_call(ctx, 0) };
    // Only when the scan program is missing: nothing of this packet was inspected.
    count(INBOUND_STAT_UNINSPECTED);
}

/// Scans a packet of a request head for lookup starts, `SCAN_CHUNKS` chunks per call, and
/// calls itself (a tail call) for the rest of the packet and after each sample it sends.
#[cgroup_skb(ingress)]
pub fn ingress_scan(ctx: SkBuffContext) -> i32 {
    try_scan(&ctx);
    1
}

/// Bytes scanned per chunk; a chunk's last word also looks at the next word.
const SCAN_CHUNK: usize = 256;
/// Chunks per `ingress_scan` call: 4 KiB, so that a 64 KiB packet fits in the kernel's
/// tail-call budget (33 calls) with room for samples.
const SCAN_CHUNKS: usize = 16;

/// What a chunk held first.
enum Found {
    /// The start of a lookup, at this payload offset.
    Lookup(usize),
    /// The end of the head (`\r\n\r\n`) starting at this payload offset.
    End(usize),
}

#[inline(always)]
fn try_scan(ctx: &SkBuffContext) -> Option<()> {
    let s = unsafe { &mut *INBOUND_SCAN.get_ptr_mut(0)? };
    let ev = unsafe { &mut *INBOUND_SCRATCH.get_ptr_mut(0)? };
    let mut found = None;
    for _ in 0..SCAN_CHUNKS {
        let pos = s.pos as usize;
        if pos >= s.end as usize {
            break;
        }
        load_words(ctx, s, pos)?;
        if let Some(f) = scan_words(&s.words, pos) {
            found = Some(f);
            break;
        }
        s.pos = (pos + SCAN_CHUNK) as u32;
    }
    match found {
        Some(Found::Lookup(at)) if at < s.end as usize => {
            let from = at
                - if at > INBOUND_BEFORE {
                    INBOUND_BEFORE
                } else {
                    at
                };
            emit_probe(ctx, ev, s, from, at - from, 0);
            // Resume inside the window's end: a lookup starting there gets its own window.
            s.pos = (from + INBOUND_SAMPLE_LEN - INBOUND_BEFORE) as u32;
        }
        Some(Found::End(at)) if at < s.end as usize => {
            if let Some(c) = INBOUND_CONN.get_ptr_mut(s.cookie) {
                unsafe { (*c).flags |= CONN_F_ENDED };
            }
            return Some(());
        }
        // Found past the bound (the head is over it): nothing before the bound is left.
        Some(_) => s.pos = s.end,
        None => {}
    }
    if s.pos < s.end {
        unsafe { INBOUND_SCAN_PROG.tail_call(ctx, 0) };
        // Past the kernel's tail-call budget: the rest of this packet goes uninspected.
        count(INBOUND_STAT_UNINSPECTED);
        return Some(());
    }
    if s.end == s.len {
        cut_at_end(ctx, ev, s);
    }
    Some(())
}

/// Loads the chunk at payload offset `pos` (and the word after it) into `s.words`, zero
/// past the packet's end.
#[inline(always)]
fn load_words(ctx: &SkBuffContext, s: &mut ScanState, pos: usize) -> Option<()> {
    let want = SCAN_CHUNK + 8;
    let avail = (s.len as usize).saturating_sub(pos);
    if avail < want {
        for w in s.words[..want / 8].iter_mut() {
            *w = 0;
        }
    }
    let n = if avail > want { want } else { avail };
    let n = load_len(&mut s.slot, n, INBOUND_SAMPLE_LEN);
    let rc = unsafe {
        bpf_skb_load_bytes(
            ctx.as_ptr() as *const _,
            ((s.payload_at as usize + pos) & 0x1ffff) as u32,
            s.words.as_mut_ptr().cast(),
            n as u32,
        )
    };
    (rc == 0).then_some(())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// `0x80` in each byte of `x` that is zero, `0x00` elsewhere (exact: no borrow between bytes).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// `0x80` in each byte of `x` equal to `b`.
#[inline(always)]
fn eq_bytes(x: u64, b: u8) -> u64 {
    zero_bytes(x ^ (ONES * b as u64))
}

/// The word of bytes `k` places further on (`x` then `next`, little-endian).
#[inline(always)]
fn ahead(x: u64, next: u64, k: u32) -> u64 {
    (x >> (8 * k)) | (next << (64 - 8 * k))
}

/// Index of the first byte flagged (`0x80`) in a non-zero mask.
#[inline(always)]
fn first_byte(mask: u64) -> usize {
    let low = mask & mask.wrapping_neg();
    // `low >> 7` is 1 << 8k; the multiply puts byte 7 - k of the constant, k, on top.
    ((low >> 7).wrapping_mul(0x0001_0203_0405_0607) >> 56) as usize
}

/// First lookup start or head end in the chunk (`words[..SCAN_CHUNK / 8]`), word by word:
/// a cheap test for `$`, `%`, `\` and CR first, the exact needles only in words that pass.
#[inline(always)]
fn scan_words(words: &[u64; INBOUND_SAMPLE_LEN / 8], pos: usize) -> Option<Found> {
    for w in 0..SCAN_CHUNK / 8 {
        let x = words[w];
        // `$` is 0x24 and `%` 0x25: one test for both.
        let candidates =
            zero_bytes((x ^ (ONES * 0x24)) & !ONES) | eq_bytes(x, b'\\') | eq_bytes(x, b'\r');
        if candidates == 0 {
            continue;
        }
        let next = words[w + 1];
        let a = |k| ahead(x, next, k);
        let lookup = (eq_bytes(x, b'$') & eq_bytes(a(1), b'{'))
            | (eq_bytes(x, b'%') & eq_bytes(a(1), b'2') & eq_bytes(a(2), b'4'))
            | (eq_bytes(x, b'\\')
                & eq_bytes(a(1), b'u')
                & eq_bytes(a(2), b'0')
                & eq_bytes(a(3), b'0')
                & eq_bytes(a(4), b'2')
                & eq_bytes(a(5), b'4'));
        let end = eq_bytes(x, b'\r')
            & eq_bytes(a(1), b'\n')
            & eq_bytes(a(2), b'\r')
            & eq_bytes(a(3), b'\n');
        if lookup | end == 0 {
            continue;
        }
        let at = pos + w * 8;
        // Both in one word: whichever comes first (a lookup cannot hold a CR).
        if lookup != 0 && (end == 0 || first_byte(lookup) < first_byte(end)) {
            return Some(Found::Lookup(at + first_byte(lookup)));
        }
        return Some(Found::End(at + first_byte(end)));
    }
    None
}

/// A lookup may start in the packet's last bytes and go on in the next packet: when one
/// of them is `$`, `%` or `\`, sends the packet's end, cut, and asks for the next packet's start.
#[inline(always)]
fn cut_at_end(ctx: &SkBuffContext, ev: &mut InboundEvent, s: &mut ScanState) {
    let len = s.len as usize;
    if len < 8 {
        return;
    }
    let Ok(last) = ctx.load::<u64>((s.payload_at as usize + len - 8) & 0x1ffff) else {
        return;
    };
    // The last five bytes: a needle has at most six.
    let candidates = (zero_bytes((last ^ (ONES * 0x24)) & !ONES) | eq_bytes(last, b'\\'))
        & 0x8080_8080_8000_0000;
    if candidates == 0 {
        return;
    }
    let from = len
        - if len > INBOUND_BEFORE {
            INBOUND_BEFORE
        } else {
            len
        };
    emit_probe(ctx, ev, s, from, 0, 0);
}

/// Sends the payload from offset `from` (up to a sample's length) as a probe sample; marks
/// it cut (and the connection to continue) when it reaches the end of a packet of the head.
#[inline(always)]
fn emit_probe(
    ctx: &SkBuffContext,
    ev: &mut InboundEvent,
    s: &mut ScanState,
    from: usize,
    match_at: usize,
    flags: u32,
) {
    let from = opaque(&mut s.slot, from, 0xffff);
    let mut flags = s.flags | flags;
    if from + INBOUND_SAMPLE_LEN > s.len as usize && s.end == s.len && s.ends_head == 0 {
        flags |= INBOUND_F_CUT;
        if let Some(c) = INBOUND_CONN.get_ptr_mut(s.cookie) {
            unsafe { (*c).flags |= CONN_F_CONTINUE };
        }
    }
    ev.match_at = match_at as u32;
    ev.offset = s.base + from as u32;
    ev.request = s.request;
    let remote = s.remote;
    if send(
        ctx,
        ev,
        s.payload_at as usize,
        from,
        INBOUND_PROBE,
        Lineage::default(),
        0,
        flags,
        s.cookie,
        &remote,
        s.remote_port,
        s.local_port,
    ) {
        count(INBOUND_STAT_SAMPLES);
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

/// Scans the first `INBOUND_SCAN_LEN` bytes of the payload for class bytes (`CAFEBABE`);
/// returns the payload offset of the first match. Uses `ev.sample` as the window.
#[inline(always)]
fn scan(ctx: &SkBuffContext, ev: &mut InboundEvent, payload_at: usize) -> Option<usize> {
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
        if let Some(i) = find_class(&ev.sample) {
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

/// First index of `CA FE BA BE` in the window (zero past the loaded bytes). Nothing here
/// depends on the loaded length: a branch on it would refine the verifier's bounds
/// differently at every position and multiply its states.
#[inline(always)]
fn find_class(buf: &[u8; INBOUND_SAMPLE_LEN]) -> Option<usize> {
    for i in 0..(CHUNK - OVERLAP) {
        let b = |k: usize| buf[(i + k) & (INBOUND_SAMPLE_LEN - 1)];
        if b(0) == 0xca && b(1) == 0xfe && b(2) == 0xba && b(3) == 0xbe {
            return Some(i);
        }
    }
    None
}

/// Sends the payload from offset `from` to the daemon, up to a sample's length; the caller
/// has set `match_at`, `offset` and `request`. False when the ring buffer was full.
#[expect(
    clippy::too_many_arguments,
    reason = "inlined; a struct would only be copied again"
)]
#[inline(always)]
fn send(
    ctx: &SkBuffContext,
    ev: &mut InboundEvent,
    payload_at: usize,
    from: usize,
    kind: u32,
    lineage: Lineage,
    tgid: u32,
    flags: u32,
    cookie: u64,
    remote: &[u8; 16],
    remote_port: u16,
    local_port: u16,
) -> bool {
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
        return false;
    }
    ev.header = header(EVENT_INBOUND);
    ev.kind = kind;
    ev.tgid = tgid;
    ev.cgroup_id = unsafe { bpf_skb_cgroup_id(ctx.as_ptr() as *mut _) };
    ev.lineage = lineage;
    ev.flags = flags;
    ev.cookie = cookie;
    ev.remote_addr = *remote;
    ev.remote_port = remote_port;
    ev.local_port = local_port;
    ev.sample_len = n as u32;
    if EVENTS.output::<InboundEvent>(&*ev, 0).is_err() {
        count_loss(EVENT_INBOUND);
        return false;
    }
    true
}
