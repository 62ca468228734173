//! Member offsets of kernel structures, read from the running kernel's BTF.
//!
//! Rust eBPF programs get no CO-RE relocations, so the programs read `task_struct` and
//! friends at offsets we hand them in the `CONFIG` map. This is a small reader of the BTF
//! type section (format: <https://docs.kernel.org/bpf/btf.html>) that resolves dotted
//! member paths, descending into anonymous structs and unions the way C does.

use std::collections::HashMap;

use detector_common::KernelOffsets;

const BTF_MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Why offsets could not be read from BTF.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The blob is not BTF or is cut short.
    #[error("malformed BTF: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// A struct the programs need is not described.
    #[error("kernel BTF has no `struct {name}`")]
    MissingStruct {
        /// The struct's name.
        name: String,
    },
    /// A member the programs need is not in its struct.
    #[error("kernel BTF has no member `{member}` in `struct {strukt}`")]
    MissingMember {
        /// The struct searched.
        strukt: String,
        /// The dotted member path.
        member: String,
    },
}

#[derive(Debug, Clone)]
struct Member {
    name: String,
    type_id: u32,
    bit_offset: u32,
}

#[derive(Debug, Clone)]
enum Ty {
    /// struct or union
    Composite {
        members: Vec<Member>,
    },
    /// typedef, const, volatile, restrict, type tag: look through to `type_id`
    Alias {
        type_id: u32,
    },
    Other,
}

/// The parsed type section: enough to resolve member offsets.
#[derive(Debug)]
pub struct Btf {
    /// Index = type id - 1.
    types: Vec<Ty>,
    /// Struct name → type id (first definition wins; forward declarations are skipped).
    structs: HashMap<String, u32>,
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, BtfError> {
    data.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| malformed(format!("cut short at byte {at}")))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| malformed(format!("cut short at byte {at}")))
}

fn malformed(reason: String) -> BtfError {
    BtfError::Malformed { reason }
}

impl Btf {
    /// Parses a little-endian BTF blob such as `/sys/kernel/btf/vmlinux`.
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if u16_at(data, 0)? != BTF_MAGIC {
            return Err(malformed("bad magic (not little-endian BTF)".into()));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let types_at = hdr_len + type_off;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or_else(|| malformed("string section out of bounds".into()))?;
        let name = |off: u32| -> String {
            let s = strings.get(off as usize..).unwrap_or_default();
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            String::from_utf8_lossy(&s[..end]).into_owned()
        };

        let mut types = Vec::new();
        let mut structs = HashMap::new();
        let mut at = types_at;
        let end = types_at + type_len;
        if end > data.len() {
            return Err(malformed("type section out of bounds".into()));
        }
        while at < end {
            let name_off = u32_at(data, at)?;
            let info = u32_at(data, at + 4)?;
            let size_or_type = u32_at(data, at + 8)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            at += 12;
            let id = types.len() as u32 + 1;
            let ty = match kind {
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let offset = u32_at(data, m + 8)?;
                        members.push(Member {
                            name: name(u32_at(data, m)?),
                            type_id: u32_at(data, m + 4)?,
                            // With kind_flag the top 8 bits hold a bitfield size.
                            bit_offset: if kind_flag {
                                offset & 0x00ff_ffff
                            } else {
                                offset
                            },
                        });
                    }
                    at += vlen * 12;
                    if kind == KIND_STRUCT {
                        structs.entry(name(name_off)).or_insert(id);
                    }
                    Ty::Composite { members }
                }
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    Ty::Alias {
                        type_id: size_or_type,
                    }
                }
                KIND_INT | KIND_VAR | KIND_DECL_TAG => {
                    at += 4;
                    Ty::Other
                }
                KIND_ARRAY => {
                    at += 12;
                    Ty::Other
                }
                KIND_ENUM | KIND_FUNC_PROTO => {
                    at += vlen * 8;
                    Ty::Other
                }
                KIND_DATASEC | KIND_ENUM64 => {
                    at += vlen * 12;
                    Ty::Other
                }
                KIND_PTR | KIND_FWD | KIND_FUNC | KIND_FLOAT => Ty::Other,
                other => return Err(malformed(format!("unknown kind {other} (type {id})"))),
            };
            types.push(ty);
        }
        Ok(Self { types, structs })
    }

    fn ty(&self, id: u32) -> Option<&Ty> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.ty(id) {
                Some(Ty::Alias { type_id }) => id = *type_id,
                _ => break,
            }
        }
        id
    }

    /// Bit offset of the member `name` in composite `id`, searching anonymous members too.
    fn find(&self, id: u32, name: &str) -> Option<(u32, u32)> {
        let Some(Ty::Composite { members }) = self.ty(self.resolve(id)) else {
            return None;
        };
        for m in members {
            if m.name == name {
                return Some((m.bit_offset, m.type_id));
            }
        }
        for m in members.iter().filter(|m| m.name.is_empty()) {
            if let Some((off, ty)) = self.find(m.type_id, name) {
                return Some((m.bit_offset + off, ty));
            }
        }
        None
    }

    /// Byte offset of a dotted member path (e.g. `f_path.dentry`) in `struct strukt`.
    pub fn offset_of(&self, strukt: &str, path: &str) -> Result<u32, BtfError> {
        let missing = || BtfError::MissingMember {
            strukt: strukt.to_owned(),
            member: path.to_owned(),
        };
        let mut id = *self
            .structs
            .get(strukt)
            .ok_or_else(|| BtfError::MissingStruct {
                name: strukt.to_owned(),
            })?;
        let mut bits = 0;
        for part in path.split('.') {
            let (off, ty) = self.find(id, part).ok_or_else(missing)?;
            bits += off;
            id = ty;
        }
        if bits % 8 != 0 {
            return Err(missing());
        }
        Ok(bits / 8)
    }

    /// Everything the kernel programs read.
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        Ok(KernelOffsets {
            task_pid: self.offset_of("task_struct", "pid")?,
            task_tgid: self.offset_of("task_struct", "tgid")?,
            task_real_parent: self.offset_of("task_struct", "real_parent")?,
            task_group_leader: self.offset_of("task_struct", "group_leader")?,
            task_start_boottime: self.offset_of("task_struct", "start_boottime")?,
            task_mm: self.offset_of("task_struct", "mm")?,
            task_exit_code: self.offset_of("task_struct", "exit_code")?,
            mm_arg_start: self.offset_of("mm_struct", "arg_start")?,
            mm_arg_end: self.offset_of("mm_struct", "arg_end")?,
            bprm_file: self.offset_of("linux_binprm", "file")?,
            bprm_filename: self.offset_of("linux_binprm", "filename")?,
            bprm_interp: self.offset_of("linux_binprm", "interp")?,
            file_dentry: self.offset_of("file", "f_path.dentry")?,
            dentry_name: self.offset_of("dentry", "d_name.name")?,
            task_signal: self.offset_of("task_struct", "signal")?,
            signal_live: self.offset_of("signal_struct", "live")?,
            task_cgroups: self.offset_of("task_struct", "cgroups")?,
            css_set_dfl_cgrp: self.offset_of("css_set", "dfl_cgrp")?,
            cgroup_level: self.offset_of("cgroup", "level")?,
            cgroup_parent: self.offset_of("cgroup", "self.parent")?,
            cgroup_kn: self.offset_of("cgroup", "kn")?,
            kernfs_node_id: self.offset_of("kernfs_node", "id")?,
            task_comm: self.offset_of("task_struct", "comm")?,
            _pad: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob from (kind, name, vlen, size_or_type, kind_flag, trailing words).
    struct Builder {
        strings: Vec<u8>,
        types: Vec<u8>,
    }

    impl Builder {
        fn new() -> Self {
            Self {
                strings: vec![0],
                types: Vec::new(),
            }
        }
        fn name(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }
        fn word(&mut self, w: u32) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        fn ty(&mut self, kind: u32, name: &str, vlen: u32, size_or_type: u32) {
            let n = self.name(name);
            self.word(n);
            self.word((kind << 24) | vlen);
            self.word(size_or_type);
        }
        fn int(&mut self, name: &str, size: u32) {
            self.ty(KIND_INT, name, 0, size);
            self.word(size * 8);
        }
        fn composite(&mut self, kind: u32, name: &str, size: u32, members: &[(&str, u32, u32)]) {
            self.ty(kind, name, members.len() as u32, size);
            for (m, ty, bits) in members {
                let n = self.name(m);
                self.word(n);
                self.word(*ty);
                self.word(*bits);
            }
        }
        fn finish(self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for w in [
                24u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    fn sample() -> Btf {
        let mut b = Builder::new();
        b.int("int", 4); // 1
        b.ty(KIND_PTR, "", 0, 1); // 2: int *
                                  // 3: anonymous struct { int hash; int len; }
        b.composite(KIND_STRUCT, "", 8, &[("hash", 1, 0), ("len", 1, 32)]);
        // 4: union { struct {..}; long hash_len; }
        b.composite(KIND_UNION, "", 8, &[("", 3, 0), ("hash_len", 1, 0)]);
        // 5: struct qstr { union; const char *name; }
        b.composite(KIND_STRUCT, "qstr", 16, &[("", 4, 0), ("name", 2, 64)]);
        // 6: typedef struct qstr qstr_t
        b.ty(KIND_TYPEDEF, "qstr_t", 0, 5);
        // 7: struct dentry { int flags; qstr_t d_name; }
        b.composite(
            KIND_STRUCT,
            "dentry",
            24,
            &[("d_flags", 1, 0), ("d_name", 6, 64)],
        );
        // 8: forward declaration that must not shadow the definition
        b.ty(KIND_FWD, "file", 0, 0);
        Btf::parse(&b.finish()).expect("sample BTF parses")
    }

    #[test]
    fn resolves_nested_and_anonymous_members() {
        let btf = sample();
        assert_eq!(btf.offset_of("dentry", "d_name").ok(), Some(8));
        // d_name (8) + name (8), through a typedef.
        assert_eq!(btf.offset_of("dentry", "d_name.name").ok(), Some(16));
        // Inside anonymous union → anonymous struct.
        assert_eq!(btf.offset_of("qstr", "len").ok(), Some(4));
    }

    #[test]
    fn names_what_is_missing() {
        let btf = sample();
        let err = btf
            .offset_of("dentry", "d_inode")
            .expect_err("no such member");
        assert_eq!(
            err.to_string(),
            "kernel BTF has no member `d_inode` in `struct dentry`"
        );
        let err = btf
            .offset_of("file", "f_path")
            .expect_err("only a forward declaration");
        assert_eq!(err.to_string(), "kernel BTF has no `struct file`");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Btf::parse(b"\x00\x00junk").is_err());
        assert!(Btf::parse(&[]).is_err());
    }

    #[test]
    fn reads_this_kernels_offsets_when_present() {
        // The kernel CI runs on exposes BTF: there, its absence is a failure, not a skip.
        let data = match std::fs::read("/sys/kernel/btf/vmlinux") {
            Ok(data) => data,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI=true but /sys/kernel/btf/vmlinux is unreadable: {e}")
            }
            Err(e) => {
                eprintln!("skipping: no kernel BTF ({e})");
                return;
            }
        };
        let off = Btf::parse(&data)
            .and_then(|b| b.kernel_offsets())
            .expect("offsets from vmlinux BTF");
        assert!(off.task_tgid > 0 && off.task_start_boottime > off.task_tgid);
        assert_eq!(off.dentry_name % 8, 0);
    }
}
