//! Java RMI's wire protocol, JRMP, as the JDK's RMI client sends it
//! (<https://docs.oracle.com/en/java/javase/17/docs/specs/rmi/protocol.html>).
//!
//! A JNDI `lookup("rmi://host:port/Name")` opens a connection and sends the 7-byte header
//! (`JRMI`, version 2, stream protocol), then waits for the server's acknowledgement before
//! it sends its own endpoint and, in a later write, the call
//! `RegistryImpl_Stub.lookup("Name")`. The kernel samples only a socket's first payload, so a
//! sample from the JDK holds the header alone; a call directly after the header is possible
//! only with the single-operation protocol, which needs no acknowledgement. See
//! `testdata/jrmp_*.hex` for captured messages.

use std::fmt;

use super::Quoted;

/// What every JRMP connection starts with.
pub const MAGIC: [u8; 4] = *b"JRMI";

/// The header of a JRMP connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JrmpHeader {
    /// Protocol version (2 since JDK 1.1).
    pub version: u16,
    /// How the connection is used.
    pub protocol: JrmpProtocol,
    /// The call that directly follows the header in the sample, if any.
    pub call: Option<JrmpCall>,
}

/// The sub-protocol named in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JrmpProtocol {
    /// `0x4b`: a connection for many calls, after an acknowledgement (what the JDK sends).
    Stream,
    /// `0x4c`: one call, right after the header (formerly RMI over HTTP).
    SingleOp,
    /// `0x4d`: several virtual connections over one.
    Multiplex,
    /// Anything else.
    Other(u8),
}

impl JrmpProtocol {
    fn from_byte(byte: u8) -> Self {
        match byte {
            0x4b => JrmpProtocol::Stream,
            0x4c => JrmpProtocol::SingleOp,
            0x4d => JrmpProtocol::Multiplex,
            other => JrmpProtocol::Other(other),
        }
    }
}

/// A JRMP call message (`0x50`): which remote object and method, and the first argument
/// when it is a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JrmpCall {
    /// `ObjID.objNum` of the object called: 0 is the registry, 1 the activator, 2 the
    /// distributed garbage collector; exported objects have random numbers.
    pub object: i64,
    /// The method's index for stubs of the 1.1 protocol (the registry's own: `lookup` is 2),
    /// or -1 when `hash` names the method.
    pub operation: i32,
    /// The interface hash (1.1 stubs) or the method hash.
    pub hash: i64,
    /// The first argument, when it is a string: for a registry lookup, the name asked for.
    pub name: Option<String>,
    /// The sample ends inside the name, or before what follows the call's header.
    pub truncated: bool,
}

/// `ObjID.REGISTRY_ID`.
const REGISTRY_OBJECT: i64 = 0;
/// The index of `lookup` among the registry's methods (`RegistryImpl_Stub`).
const REGISTRY_LOOKUP: i32 = 2;
/// `RegistryImpl_Stub.interfaceHash`.
const REGISTRY_INTERFACE_HASH: i64 = 0x4415_4dc9_d4e6_3bdf;

impl JrmpCall {
    /// Whether this is `Registry.lookup(name)`, what a JNDI `rmi://` lookup sends.
    pub fn is_registry_lookup(&self) -> bool {
        self.object == REGISTRY_OBJECT
            && self.operation == REGISTRY_LOOKUP
            && self.hash == REGISTRY_INTERFACE_HASH
    }
}

/// `TransportConstants.Call`.
const MSG_CALL: u8 = 0x50;
/// `ObjectStreamConstants.STREAM_MAGIC` and `STREAM_VERSION`.
const STREAM_HEADER: [u8; 4] = [0xac, 0xed, 0x00, 0x05];
/// `ObjectStreamConstants.TC_BLOCKDATA`: primitive data up to 255 bytes.
const TC_BLOCKDATA: u8 = 0x77;
/// `ObjectStreamConstants.TC_STRING`: a string of up to 65535 bytes.
const TC_STRING: u8 = 0x74;
/// The call header in block data: `ObjID` (objNum: 8 bytes, `UID`: 4 + 8 + 2), operation
/// (4 bytes), hash (8 bytes).
const CALL_HEADER_LEN: usize = 34;

/// Decodes the JRMP header at the start of `bytes`, and the call after it if the sample
/// holds one. `None` unless `bytes` starts with [`MAGIC`] and has the whole 7-byte header.
pub fn parse_header(bytes: &[u8]) -> Option<JrmpHeader> {
    let (header, rest) = bytes.split_first_chunk::<7>()?;
    let [m0, m1, m2, m3, v0, v1, protocol] = *header;
    if [m0, m1, m2, m3] != MAGIC {
        return None;
    }
    let protocol = JrmpProtocol::from_byte(protocol);
    let call = match protocol {
        JrmpProtocol::Stream | JrmpProtocol::SingleOp => parse_call(rest),
        JrmpProtocol::Multiplex | JrmpProtocol::Other(_) => None,
    };
    Some(JrmpHeader {
        version: u16::from_be_bytes([v0, v1]),
        protocol,
        call,
    })
}

/// Decodes a call message at the start of `bytes` (what a client sends after the
/// handshake). `None` unless `bytes` holds the whole call header; a name cut by the end of
/// the sample is kept as far as it goes.
pub fn parse_call(bytes: &[u8]) -> Option<JrmpCall> {
    let (&MSG_CALL, rest) = bytes.split_first()? else {
        return None;
    };
    let (&stream, rest) = rest.split_first_chunk::<4>()?;
    let (&[TC_BLOCKDATA, block_len], rest) = rest.split_first_chunk::<2>()? else {
        return None;
    };
    if stream != STREAM_HEADER || usize::from(block_len) < CALL_HEADER_LEN {
        return None;
    }
    let (block, rest) = rest.split_at_checked(usize::from(block_len))?;
    let object = i64::from_be_bytes(*block.first_chunk::<8>()?);
    let operation = i32::from_be_bytes(*block.get(22..26)?.first_chunk::<4>()?);
    let hash = i64::from_be_bytes(*block.get(26..34)?.first_chunk::<8>()?);
    let (name, truncated) = match rest {
        [TC_STRING, len_hi, len_lo, text @ ..] => {
            let len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
            let text = text.get(..len).unwrap_or(text);
            (Some(modified_utf8(text)), text.len() < len)
        }
        // Cut inside the string's header, or right after the call header.
        [] | [TC_STRING] | [TC_STRING, _] => (None, true),
        // Another argument type (an object, a long string): not worth decoding here.
        _ => (None, false),
    };
    Some(JrmpCall {
        object,
        operation,
        hash,
        name,
        truncated,
    })
}

/// Decodes Java's modified UTF-8 (`DataInput.readUTF`): UTF-8 with NUL as two bytes and
/// supplementary characters as surrogate pairs. Malformed bytes are replaced.
fn modified_utf8(bytes: &[u8]) -> String {
    let continuation = |i: usize| {
        bytes
            .get(i)
            .filter(|&&b| b & 0xc0 == 0x80)
            .map(|&b| u16::from(b & 0x3f))
    };
    let mut units = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let (unit, used) = match b {
            0x00..=0x7f => (u16::from(b), 1),
            0xc0..=0xdf => match continuation(i + 1) {
                Some(c1) => (u16::from(b & 0x1f) << 6 | c1, 2),
                None => (0xfffd, 1),
            },
            0xe0..=0xef => match (continuation(i + 1), continuation(i + 2)) {
                (Some(c1), Some(c2)) => (u16::from(b & 0x0f) << 12 | c1 << 6 | c2, 3),
                _ => (0xfffd, 1),
            },
            _ => (0xfffd, 1),
        };
        units.push(unit);
        i += used;
    }
    String::from_utf16_lossy(&units)
}

// === display ===

impl fmt::Display for JrmpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JRMP v{} ", self.version)?;
        match self.protocol {
            JrmpProtocol::Stream => f.write_str("stream protocol")?,
            JrmpProtocol::SingleOp => f.write_str("single-op protocol")?,
            JrmpProtocol::Multiplex => f.write_str("multiplex protocol")?,
            JrmpProtocol::Other(byte) => write!(f, "protocol 0x{byte:02x}")?,
        }
        if let Some(call) = &self.call {
            write!(f, ", {call}")?;
        }
        Ok(())
    }
}

impl fmt::Display for JrmpCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_registry_lookup() {
            f.write_str("registry lookup")?;
        } else {
            write!(
                f,
                "call object={} operation={} hash=0x{:016x}",
                self.object, self.operation, self.hash
            )?;
        }
        if let Some(name) = &self.name {
            write!(f, " {}", Quoted(name))?;
        }
        if self.truncated {
            f.write_str(" (truncated)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call message as `ObjectOutputStream` writes it, with a string argument.
    fn call(object: i64, operation: i32, hash: i64, name: &[u8]) -> Vec<u8> {
        let mut out = vec![MSG_CALL];
        out.extend(STREAM_HEADER);
        out.extend([TC_BLOCKDATA, CALL_HEADER_LEN as u8]);
        out.extend(object.to_be_bytes());
        out.extend([0u8; 14]); // UID
        out.extend(operation.to_be_bytes());
        out.extend(hash.to_be_bytes());
        out.push(TC_STRING);
        out.extend((name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out
    }

    #[test]
    fn header_protocols() {
        for (byte, protocol, text) in [
            (0x4b, JrmpProtocol::Stream, "JRMP v2 stream protocol"),
            (0x4c, JrmpProtocol::SingleOp, "JRMP v2 single-op protocol"),
            (0x4d, JrmpProtocol::Multiplex, "JRMP v2 multiplex protocol"),
            (0x4e, JrmpProtocol::Other(0x4e), "JRMP v2 protocol 0x4e"),
        ] {
            let header = parse_header(&[b'J', b'R', b'M', b'I', 0, 2, byte]).expect("a header");
            assert_eq!((header.version, header.protocol), (2, protocol));
            assert_eq!(header.to_string(), text);
        }
        assert_eq!(parse_header(b"JRMI\x00\x02"), None);
        assert_eq!(parse_header(b"JRMX\x00\x02\x4b"), None);
    }

    #[test]
    fn single_op_call_after_the_header() {
        let mut bytes = b"JRMI\x00\x02\x4c".to_vec();
        bytes.extend(call(0, 2, REGISTRY_INTERFACE_HASH, b"Exploit"));
        let header = parse_header(&bytes).expect("a header");
        let call = header.call.as_ref().expect("a call");
        assert!(call.is_registry_lookup());
        assert_eq!(call.name.as_deref(), Some("Exploit"));
        assert_eq!(
            header.to_string(),
            r#"JRMP v2 single-op protocol, registry lookup "Exploit""#
        );
        // Cut inside the name.
        let header = parse_header(&bytes[..bytes.len() - 3]).expect("a header");
        assert_eq!(
            header.to_string(),
            r#"JRMP v2 single-op protocol, registry lookup "Expl" (truncated)"#
        );
        // A multiplexed connection carries no call directly.
        bytes[6] = 0x4d;
        assert_eq!(parse_header(&bytes).expect("a header").call, None);
    }

    #[test]
    fn other_calls() {
        let c = parse_call(&call(-5, -1, 0x1234, b"x")).expect("a call");
        assert!(!c.is_registry_lookup());
        assert_eq!(
            c.to_string(),
            r#"call object=-5 operation=-1 hash=0x0000000000001234 "x""#
        );
        // An object argument instead of a string.
        let mut bytes = call(0, 2, REGISTRY_INTERFACE_HASH, b"");
        bytes.truncate(bytes.len() - 3);
        bytes.push(0x73); // TC_OBJECT
        let c = parse_call(&bytes).expect("a call");
        assert_eq!((c.name, c.truncated), (None, false));
        // Not a call, or no whole call header.
        assert_eq!(parse_call(&[0x52]), None);
        assert_eq!(parse_call(&bytes[..20]), None);
    }

    #[test]
    fn names_are_modified_utf8() {
        assert_eq!(modified_utf8(b"a\xc0\x80b"), "a\0b");
        assert_eq!(modified_utf8("é€".as_bytes()), "é€");
        // U+1F600 as a surrogate pair, each half in three bytes.
        assert_eq!(modified_utf8(b"\xed\xa0\xbd\xed\xb8\x80"), "\u{1f600}");
        assert_eq!(modified_utf8(b"\xff\xc3"), "\u{fffd}\u{fffd}");
    }
}
