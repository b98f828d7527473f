//! The bytes the generator sends, and the bytes it expects back.
//!
//! One pattern is built per run, `payload + OFFSETS` bytes long, together with its uppercased
//! copy. Message `k` of connection `c` is the `payload`-byte window of the pattern that starts at
//! an offset mixed from `(c, k)`, and its expected reply is the same window of the uppercased
//! copy. So every message differs from its neighbours, yet sending one costs no allocation and no
//! byte-by-byte work: the generator only ever slices two shared buffers.
//!
//! The pattern mixes lowercase letters (which the server must change), uppercase letters, digits
//! and punctuation (which it must leave alone) and bytes ≥ 0x80 (which a locale-aware
//! `toupper` might wrongly change), so the reply check catches every way to get the protocol
//! wrong.

/// How many distinct starting offsets messages are taken from.
const OFFSETS: usize = 4096;

const PUNCTUATION: &[u8] = b" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\n\t";

/// A payload pattern and its expected reply.
pub(crate) struct Payload {
    sent: Vec<u8>,
    expected: Vec<u8>,
    len: usize,
}

impl Payload {
    /// Builds the pattern for messages of `len` bytes.
    pub(crate) fn new(len: usize) -> Self {
        let sent: Vec<u8> = (0..len + OFFSETS).map(|i| byte_at(i as u64)).collect();
        let expected = sent.to_ascii_uppercase();
        Payload { sent, expected, len }
    }

    /// Bytes per message.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Message `msg` of connection `conn`: the bytes to send and the reply the server owes.
    pub(crate) fn message(&self, conn: usize, msg: usize) -> (&[u8], &[u8]) {
        let start = (mix(((conn as u64) << 32) ^ msg as u64) % OFFSETS as u64) as usize;
        let window = start..start + self.len;
        (&self.sent[window.clone()], &self.expected[window])
    }
}

/// The pattern byte at position `i`: about 40 % lowercase, 15 % each uppercase, digits,
/// punctuation and non-ASCII.
fn byte_at(i: u64) -> u8 {
    let r = mix(i);
    let pick = r >> 8;
    match r % 100 {
        0..40 => b'a' + (pick % 26) as u8,
        40..55 => b'A' + (pick % 26) as u8,
        55..70 => b'0' + (pick % 10) as u8,
        70..85 => PUNCTUATION[(pick % PUNCTUATION.len() as u64) as usize],
        _ => 0x80 + (pick % 128) as u8,
    }
}

/// SplitMix64's output function: a cheap, well-spread hash of a counter.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_the_message_with_only_a_to_z_uppercased() {
        let payload = Payload::new(1000);
        let (sent, expected) = payload.message(3, 7);
        assert_eq!(sent.len(), 1000);
        for (&s, &e) in sent.iter().zip(expected) {
            let want = if s.is_ascii_lowercase() { s - 32 } else { s };
            assert_eq!(e, want);
        }
    }

    #[test]
    fn pattern_has_every_kind_of_byte() {
        let payload = Payload::new(1000);
        let (sent, _) = payload.message(0, 0);
        assert!(sent.iter().any(u8::is_ascii_lowercase));
        assert!(sent.iter().any(u8::is_ascii_uppercase));
        assert!(sent.iter().any(u8::is_ascii_digit));
        assert!(sent.iter().any(u8::is_ascii_punctuation));
        assert!(sent.iter().any(|b| *b >= 0x80));
    }

    #[test]
    fn messages_differ_between_connections_and_rounds() {
        let payload = Payload::new(64);
        let first = payload.message(0, 0).0;
        assert_ne!(first, payload.message(0, 1).0);
        assert_ne!(first, payload.message(1, 0).0);
    }
}
