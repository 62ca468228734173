//! FNV-1a, identical on both sides: the key of paths that do not fit a fixed-size key.

use crate::PATH_LEN;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a (64-bit) of `bytes` up to the first NUL: cheap enough for the kernel's bounded
/// loops, identical on both sides, and used to key paths that do not fit a fixed key.
#[inline(always)]
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    for &b in bytes {
        if b == 0 {
            break;
        }
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// [`fnv1a`] of `path[start..end]`, written for the verifier: an index loop with a
/// masked index, because it cannot follow a slice iterator's bounds through the loop.
#[inline(always)]
pub fn fnv1a_at(path: &[u8; PATH_LEN], start: usize, end: usize) -> u64 {
    let mut hash = FNV_OFFSET;
    for i in 0..PATH_LEN {
        let j = start + i;
        if j >= end || j >= PATH_LEN {
            break;
        }
        let b = path[j & (PATH_LEN - 1)];
        if b == 0 {
            break;
        }
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// FNV-1a (64-bit) of all of `bytes`, NULs included (for userspace keys, not paths).
pub fn fnv1a_bytes(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}
