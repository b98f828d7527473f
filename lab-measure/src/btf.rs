//! The little the loader reads from the kernel's own type information (BTF,
//! `/sys/kernel/btf/vmlinux`): how many arguments a raw tracepoint passes, and where a field of a
//! kernel struct is. aya keeps its BTF reader to itself, and the format is simple: a header, then
//! the types one after another, each a 12-byte record and data whose size its kind gives.

use std::fs;

use anyhow::{Context as _, Result, bail};

/// The running kernel's BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;

// Type kinds (include/uapi/linux/btf.h) whose records this reader looks into.
const KIND_PTR: u32 = 2;
const KIND_STRUCT: u32 = 4;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC_PROTO: u32 = 13;

pub struct Btf {
    data: Vec<u8>,
    /// Where the strings start in `data`.
    strings: usize,
    /// Each type's record, by id (id 0 is `void`, which has none).
    offsets: Vec<usize>,
}

/// One type's record: `name_off`, `info` (kind in bits 24-28, `vlen` in 0-15, `kind_flag` in
/// 31), and `size` or `type`, followed by `vlen` entries for the kinds that have them.
struct Type {
    at: usize,
    name: u32,
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    size_or_type: u32,
}

impl Btf {
    pub fn from_sys_fs() -> Result<Btf> {
        Btf::parse(fs::read(VMLINUX).with_context(|| format!("reading {VMLINUX}"))?)
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf> {
        let word = |at: usize| -> Result<u32> {
            Ok(u32::from_le_bytes(data.get(at..at + 4).context("BTF ends early")?.try_into()?))
        };
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            bail!("not little-endian BTF");
        }
        let header = word(4)? as usize;
        let (type_off, type_len, str_off) = (word(8)? as usize, word(12)? as usize, word(16)? as usize);
        let types = header + type_off;
        let mut btf = Btf { data: Vec::new(), strings: header + str_off, offsets: vec![0] };
        let mut at = types;
        while at < types + type_len {
            btf.offsets.push(at);
            let info = word(at + 4)?;
            let vlen = (info & 0xffff) as usize;
            // The data after the 12-byte record, by kind (1 INT … 19 ENUM64).
            let extra = match (info >> 24) & 0x1f {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => 12 * vlen,
                6 | 13 => 8 * vlen,
                2 | 7..=12 | 16 | 18 => 0,
                kind => bail!("BTF type kind {kind} is new to this reader"),
            };
            at += 12 + extra;
        }
        btf.data = data;
        Ok(btf)
    }

    fn word(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.data[at..at + 4].try_into().expect("checked when parsed"))
    }

    fn get(&self, id: u32) -> Option<Type> {
        let at = *self.offsets.get(id as usize).filter(|_| id != 0)?;
        let info = self.word(at + 4);
        Some(Type {
            at,
            name: self.word(at),
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type: self.word(at + 8),
        })
    }

    fn name(&self, offset: u32) -> &[u8] {
        let start = self.strings + offset as usize;
        let tail = self.data.get(start..).unwrap_or_default();
        &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())]
    }

    fn find(&self, name: &str, kind: u32) -> Option<Type> {
        (1..self.offsets.len() as u32)
            .filter_map(|id| self.get(id))
            .find(|ty| ty.kind == kind && self.name(ty.name) == name.as_bytes())
    }

    /// The byte offset of the first of `fields` that struct `name` has, and that field's name.
    pub fn member_offset(&self, name: &str, fields: &[&'static str]) -> Option<(&'static str, u32)> {
        let ty = self.find(name, KIND_STRUCT)?;
        let members: Vec<(u32, u32)> =
            (0..ty.vlen).map(|i| ty.at + 12 + 12 * i).map(|m| (self.word(m), self.word(m + 8))).collect();
        fields.iter().find_map(|field| {
            let (_, offset) = members.iter().find(|(name, _)| self.name(*name) == field.as_bytes())?;
            // With kind_flag the offset's low 24 bits are the bit offset, the rest a bitfield's size.
            let bits = if ty.kind_flag { offset & 0xff_ffff } else { *offset };
            Some((*field, bits / 8))
        })
    }

    /// How many arguments raw tracepoint `name` passes its programs: its `btf_trace_<name>`
    /// typedef is a pointer to a function whose first parameter is the tracepoint's own data.
    pub fn raw_tracepoint_args(&self, name: &str) -> Option<usize> {
        let typedef = self.find(&format!("btf_trace_{name}"), KIND_TYPEDEF)?;
        let pointer = self.get(typedef.size_or_type).filter(|ty| ty.kind == KIND_PTR)?;
        let proto = self.get(pointer.size_or_type).filter(|ty| ty.kind == KIND_FUNC_PROTO)?;
        proto.vlen.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF: `struct task_struct { int flags; long state; }` and
    /// `typedef void (*btf_trace_sched_switch)(void *, bool, struct task_struct *)`.
    fn tiny() -> Vec<u8> {
        let strings = b"\0task_struct\0flags\0state\0btf_trace_sched_switch\0int\0";
        let name = |s: &str| {
            let at = strings.windows(s.len() + 1).position(|w| &w[..s.len()] == s.as_bytes() && w[s.len()] == 0);
            at.unwrap() as u32
        };
        let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
        let mut types: Vec<u32> = Vec::new();
        // 1: int
        types.extend([name("int"), info(1, 0), 4, 32]);
        // 2: struct task_struct { flags at bit 0, state at bit 64 }
        types.extend([name("task_struct"), info(KIND_STRUCT, 2), 16]);
        types.extend([name("flags"), 1, 0, name("state"), 1, 64]);
        // 3: pointer to 4; 4: func proto with three parameters; 5: the typedef, to 3
        types.extend([0, info(KIND_PTR, 0), 4]);
        types.extend([0, info(KIND_FUNC_PROTO, 3), 0, 0, 0, 0, 1, 0, 2]);
        types.extend([name("btf_trace_sched_switch"), info(KIND_TYPEDEF, 0), 3]);
        let types: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut data = Vec::new();
        data.extend(MAGIC.to_le_bytes());
        data.extend([1, 0]);
        for word in [24, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
            data.extend(word.to_le_bytes());
        }
        data.extend(types);
        data.extend(strings);
        data
    }

    #[test]
    fn finds_a_field_and_a_tracepoints_arguments() {
        let btf = Btf::parse(tiny()).unwrap();
        assert_eq!(btf.member_offset("task_struct", &["__state", "state"]), Some(("state", 8)));
        assert_eq!(btf.member_offset("task_struct", &["__state"]), None);
        assert_eq!(btf.raw_tracepoint_args("sched_switch"), Some(2));
        assert_eq!(btf.raw_tracepoint_args("sched_wakeup"), None);
    }

    #[test]
    fn reads_this_kernels_btf() {
        let Ok(btf) = Btf::from_sys_fs() else { return }; // a kernel built without BTF
        let args = btf.raw_tracepoint_args("sched_switch").expect("sched_switch is a raw tracepoint");
        assert!((3..=4).contains(&args), "{args}");
        let (field, offset) = btf.member_offset("task_struct", &["__state", "state"]).expect("task_struct has a state");
        assert!(offset > 0, "{field} at {offset}");
    }
}
