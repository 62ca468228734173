//! Responses that happen in userspace. (Killing the offending program itself happens in
//! the kernel, at exec; see `detector-ebpf`.)

pub mod forensics;
pub mod kill;
