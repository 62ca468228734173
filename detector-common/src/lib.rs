//! Types shared by the kernel programs (`detector-ebpf`) and the daemon (`detector`).
//!
//! Everything here crosses the user/kernel boundary byte for byte, so every type is
//! `#[repr(C)]`, `Copy`, has explicit padding, and uses `u32` flags rather than `bool`.
//! A change to a layout here is a change to both sides: the daemon's decoder checks sizes.
//!
//! The items are grouped by the program that uses them (`exec`, `lineage`, `egress`,
//! `ingress`), with what every program shares in `event`, `config` and `hash`. Each group is
//! re-exported at the crate root, so `detector_common::EXEC_F_KILLED` and
//! `detector_common::exec::EXEC_F_KILLED` name the same item.
#![no_std]

pub mod config;
pub mod egress;
pub mod event;
pub mod exec;
pub mod hash;
pub mod ingress;
pub mod lineage;

pub use config::*;
pub use egress::*;
pub use event::*;
pub use exec::*;
pub use hash::*;
pub use ingress::*;
pub use lineage::*;

/// Bytes of `task->comm` (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Bytes of an executed path captured in the kernel (`bprm->filename`, `bprm->interp`).
pub const PATH_LEN: usize = 256;
/// Bytes of the argument vector captured in the kernel (NUL-separated, as in `/proc/PID/cmdline`).
pub const ARGS_LEN: usize = 512;
/// Bytes of a basename used as a map key (launcher names, program classes).
pub const NAME_LEN: usize = 32;
/// Bytes of a path prefix in the world-writable-directory LPM trie.
pub const PREFIX_LEN: usize = 64;

#[cfg(feature = "user")]
mod pod {
    use super::*;

    /// `unsafe impl aya::Pod` for types that derive `bytemuck::Pod`, which is refused at
    /// compile time unless the type is `repr(C)`, `Copy`, plain data all through, and free
    /// of compiler-added padding: what aya requires of a map key or value.
    macro_rules! aya_pod {
        ($($ty:ty),* $(,)?) => {$(
            const _: () = {
                fn is_bytemuck_pod<T: bytemuck::Pod>() {}
                let _ = is_bytemuck_pod::<$ty>;
            };
            // SAFETY: `$ty` is `bytemuck::Pod` (checked just above), which is what aya::Pod
            // asks for: any bit pattern is valid and there are no padding bytes.
            unsafe impl aya::Pod for $ty {}
        )*};
    }

    aya_pod!(
        Config,
        KernelOffsets,
        LineageSlot,
        Lineage,
        AllowKey,
        NetAllow,
        Watch
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        // Reference values of FNV-1a 64 (draft-eastlake-fnv).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        // Stops at the first NUL, as the kernel's fixed buffers are NUL-padded.
        assert_eq!(fnv1a(b"foobar\0junk"), fnv1a(b"foobar"));
    }

    #[test]
    fn fnv_at_hashes_the_same_bytes_as_fnv() {
        let mut path = [0u8; PATH_LEN];
        path[..12].copy_from_slice(b"/usr/bin/git");
        assert_eq!(fnv1a_at(&path, 0, 12), fnv1a(b"/usr/bin/git"));
        assert_eq!(fnv1a_at(&path, 9, 12), fnv1a(b"git"));
        assert_eq!(fnv1a_at(&path, 12, 12), fnv1a(b""));
        let full = [b'a'; PATH_LEN];
        assert_eq!(fnv1a_at(&full, 0, 999), fnv1a(&full));
    }

    #[test]
    fn comm_keys_are_cut_as_the_kernel_cuts_comm() {
        assert_eq!(&comm_key(b"java")[..5], b"java\0");
        let long = comm_key(b"x86_64-linux-gnu-python3.11");
        assert_eq!(&long[..15], b"x86_64-linux-gn");
        assert_eq!(long[15], 0);
        let words = comm_words(&comm_key(b"java"));
        assert_eq!(words[0], u64::from_ne_bytes(*b"java\0\0\0\0"));
        assert_eq!(words[1], 0);
    }

    /// What the exec program does with `Config::writable`, on plain data.
    fn starts_with_prefix(path: &[u8], prefix: &[u8]) -> bool {
        let (words, masks) = prefix_words(prefix).expect("fits");
        let mut buf = [0xaau8; WRITABLE_LEN]; // stale bytes past the NUL, as in the kernel
        let n = path.len().min(WRITABLE_LEN);
        buf[..n].copy_from_slice(&path[..n]);
        if n < WRITABLE_LEN {
            buf[n] = 0;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&buf[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        (0..3).all(|i| (word(i) ^ words[i]) & masks[i] == 0)
    }

    #[test]
    fn writable_prefixes_match_as_the_trie_did() {
        assert!(starts_with_prefix(b"/tmp/x", b"/tmp/"));
        assert!(starts_with_prefix(
            b"/tmp/a/very/long/path/to/a/binary",
            b"/tmp/"
        ));
        assert!(starts_with_prefix(b"/var/tmp/payload", b"/var/tmp/"));
        assert!(!starts_with_prefix(b"/tmpfoo/x", b"/tmp/"));
        assert!(!starts_with_prefix(b"/tmp", b"/tmp/"));
        assert!(!starts_with_prefix(b"/usr/bin/true", b"/tmp/"));
        assert!(starts_with_prefix(
            b"/a/b/c/d/e/f/g/h/i/j/k/l/x",
            b"/a/b/c/d/e/f/g/h/i/j/k/l"
        ));
        assert!(prefix_words(b"/a/directory/longer/than/24/bytes/").is_none());
    }

    #[test]
    fn layouts_have_no_hidden_padding() {
        use core::mem::size_of;
        assert_eq!(size_of::<TaskInfo>(), 4 * 6 + 8 + 8 + COMM_LEN);
        assert_eq!(size_of::<EventHeader>(), 16);
        assert_eq!(size_of::<Lineage>(), 16);
        assert_eq!(
            size_of::<Config>(),
            16 + 16 * LAUNCHER_SLOTS + 8 + 48 * WRITABLE_SLOTS + 8
        );
        assert_eq!(size_of::<Config>() % 8, 0);
        assert_eq!(size_of::<KernelOffsets>(), 4 * 24);
        assert_eq!(size_of::<LineageSlot>(), 32);
        assert_eq!(LINEAGE_SLOTS as usize * size_of::<LineageSlot>() % 4096, 0);
        assert_eq!(
            size_of::<ExecEvent>(),
            16 + size_of::<TaskInfo>() + 16 + 24 + 2 * PATH_LEN + ARGS_LEN
        );
        assert_eq!(size_of::<ExitEvent>(), 16 + size_of::<TaskInfo>() + 16 + 8);
        assert_eq!(size_of::<InboundEvent>(), 96 + INBOUND_SAMPLE_LEN);
        assert_eq!(size_of::<InboundConn>(), 16);
        assert_eq!(size_of::<Watch>(), 48);
    }

    fn sample(bytes: &[u8]) -> ([u8; SAMPLE_LEN], usize) {
        let mut s = [0u8; SAMPLE_LEN];
        s[..bytes.len()].copy_from_slice(bytes);
        (s, bytes.len())
    }

    #[test]
    fn classifies_jrmp_ldap_and_dns() {
        let (s, n) = sample(b"JRMI\x00\x02\x4b");
        assert_eq!(classify_payload(&s, n, false), PROTO_RMI);
        // An LDAPv3 anonymous simple bind, message id 1.
        let (s, n) = sample(&[
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
        ]);
        assert_eq!(classify_payload(&s, n, false), PROTO_LDAP);
        // A search request with a long-form length and a 2-byte message id.
        let (s, n) = sample(&[0x30, 0x81, 0x90, 0x02, 0x02, 0x01, 0x00, 0x63, 0x81, 0x89]);
        assert_eq!(classify_payload(&s, n, false), PROTO_LDAP);
        // A DNS query for "a.example" over UDP, and the same over TCP.
        let dns = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 7, b'e', b'x', b'a', b'm',
            b'p', b'l', b'e', 0, 0, 1, 0, 1,
        ];
        let (s, n) = sample(&dns);
        assert_eq!(classify_payload(&s, n, true), PROTO_DNS);
        let mut tcp = [0u8; 29];
        tcp[1] = dns.len() as u8;
        tcp[2..].copy_from_slice(&dns);
        let (s, n) = sample(&tcp);
        assert_eq!(classify_payload(&s, n, false), PROTO_DNS);
    }

    #[test]
    fn leaves_other_traffic_alone() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            &[0x30, 0x05, 0x02, 0x01, 0x01, 0x61, 0x00][..], // a bind *response*
            &b"JRM"[..],
            &[][..],
        ] {
            let (s, n) = sample(bytes);
            assert_eq!(classify_payload(&s, n, false), PROTO_NONE, "{bytes:?}");
        }
        // A DNS *response* is not a query.
        let (s, n) = sample(&[
            0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
        ]);
        assert_eq!(classify_payload(&s, n, true), PROTO_NONE);
    }

    #[test]
    fn name_key_pads_and_cuts() {
        let k = name_key(b"java");
        assert_eq!(&k[..5], b"java\0");
        let long = [b'x'; 40];
        assert_eq!(name_key(&long), [b'x'; NAME_LEN]);
    }
}
