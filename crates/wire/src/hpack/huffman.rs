//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//!
//! Decoding is table driven, four bits at a time: the decoder's state is an internal node of
//! the code tree, and one lookup per nibble gives the next node, the symbol completed (at most
//! one: the shortest code is 5 bits), and whether the string may end there. The tables are
//! built once, on first use, from the code table of Appendix B.
//!
//! Errors required by §5.2: a string that contains the EOS symbol, and padding longer than
//! 7 bits or not made of the most significant bits of EOS (all ones).

use std::sync::OnceLock;

use super::tables::HUFFMAN_CODES;
use super::HpackError;

const EOS: u16 = 256;

/// One transition of the nibble automaton.
#[derive(Clone, Copy, Default)]
struct Step {
    /// Next state (an internal node of the tree; 0 is the root).
    next: u8,
    /// The symbol completed by this nibble, if `flags & EMIT`.
    symbol: u8,
    flags: u8,
}

const EMIT: u8 = 1;
/// The nibble walks into EOS (or off the tree): a decoding error.
const FAIL: u8 = 2;
/// The string may end in `next`: the bits since the last symbol are a valid padding (fewer
/// than 8, all ones).
const ACCEPT: u8 = 4;

struct Automaton {
    steps: Vec<[Step; 16]>,
}

/// A node of the decoding tree while it is built.
#[derive(Clone, Copy)]
enum Node {
    Internal([u16; 2]),
    Leaf(u16),
}

fn automaton() -> &'static Automaton {
    static AUTOMATON: OnceLock<Automaton> = OnceLock::new();
    AUTOMATON.get_or_init(build)
}

fn build() -> Automaton {
    // 1. The binary tree: internal nodes get the ids 0.. in creation order; leaves are
    //    stored separately.
    let mut internal: Vec<[Option<Node>; 2]> = vec![[None, None]];
    for (symbol, &(code, len)) in HUFFMAN_CODES.iter().enumerate() {
        let mut node = 0usize;
        for i in (0..len).rev() {
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                internal[node][bit] = Some(Node::Leaf(symbol as u16));
            } else {
                node = match internal[node][bit] {
                    Some(Node::Internal([id, _])) => id as usize,
                    _ => {
                        internal.push([None, None]);
                        let id = internal.len() - 1;
                        internal[node][bit] = Some(Node::Internal([id as u16, 0]));
                        id
                    }
                };
            }
        }
    }
    // 2. Which internal nodes lie on the all-ones path within 7 bits of the root (valid
    //    padding ends there).
    let mut accepting = vec![false; internal.len()];
    let mut node = 0usize;
    accepting[0] = true;
    for _ in 0..7 {
        match internal[node][1] {
            Some(Node::Internal([id, _])) => {
                node = id as usize;
                accepting[node] = true;
            }
            _ => break,
        }
    }
    // 3. For each state and nibble, walk four bits.
    let mut steps = vec![[Step::default(); 16]; internal.len()];
    for (state, row) in steps.iter_mut().enumerate() {
        for (nibble, step) in row.iter_mut().enumerate() {
            let mut node = state;
            let mut out = Step::default();
            for i in (0..4).rev() {
                let bit = (nibble >> i) & 1;
                match internal[node][bit] {
                    Some(Node::Internal([id, _])) => node = id as usize,
                    Some(Node::Leaf(symbol)) if symbol != EOS => {
                        out.flags |= EMIT;
                        out.symbol = symbol as u8;
                        node = 0;
                    }
                    _ => {
                        out.flags |= FAIL;
                        break;
                    }
                }
            }
            out.next = node as u8;
            if accepting[node] {
                out.flags |= ACCEPT;
            }
            *step = out;
        }
    }
    Automaton { steps }
}

/// Decodes a Huffman-coded string, appending to `dst`. Fails with the §5.2 errors, or with
/// [`HpackError::StringTooLong`] as soon as the output would pass `limit` octets.
pub fn decode(src: &[u8], dst: &mut Vec<u8>, limit: usize) -> Result<(), HpackError> {
    let start = dst.len();
    walk(src, |symbol| {
        if dst.len() - start >= limit {
            return Err(HpackError::StringTooLong { limit });
        }
        dst.push(symbol);
        Ok(())
    })
}

/// Checks a Huffman-coded string for the §5.2 errors without materialising it: used for a
/// string too long to keep, so that a bad coding is still reported without allocating.
pub fn validate(src: &[u8]) -> Result<(), HpackError> {
    walk(src, |_| Ok(()))
}

/// Runs the nibble automaton over `src`, handing each decoded symbol to `emit`.
#[inline(always)]
fn walk(src: &[u8], mut emit: impl FnMut(u8) -> Result<(), HpackError>) -> Result<(), HpackError> {
    let a = automaton();
    let mut state = 0usize;
    let mut accept = true;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = a.steps[state][nibble as usize];
            if step.flags & FAIL != 0 {
                return Err(HpackError::HuffmanEos);
            }
            if step.flags & EMIT != 0 {
                emit(step.symbol)?;
            }
            state = step.next as usize;
            accept = step.flags & ACCEPT != 0;
        }
    }
    if accept {
        Ok(())
    } else {
        Err(HpackError::HuffmanPadding)
    }
}

/// The encoded length in octets of `src`.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(HUFFMAN_CODES[b as usize].1))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `src` to `dst`, padded with the high bits of EOS (ones).
pub fn encode(src: &[u8], dst: &mut impl bytes::BufMut) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = HUFFMAN_CODES[b as usize];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            dst.put_u8((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.put_u8(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc7541_c4_strings() {
        for (plain, coded) in [
            ("www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
            ("no-cache", "a8eb10649cbf"),
            ("custom-key", "25a849e95ba97d7f"),
            ("custom-value", "25a849e95bb8e8b4bf"),
        ] {
            let mut out = Vec::new();
            encode(plain.as_bytes(), &mut out);
            assert_eq!(out, hex(coded), "{plain}");
            assert_eq!(encoded_len(plain.as_bytes()), out.len());
            let mut back = Vec::new();
            decode(&out, &mut back, usize::MAX).unwrap();
            assert_eq!(back, plain.as_bytes());
        }
    }

    #[test]
    fn every_octet_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        encode(&all, &mut out);
        let mut back = Vec::new();
        decode(&out, &mut back, usize::MAX).unwrap();
        assert_eq!(back, all);
    }

    #[test]
    fn eos_and_bad_padding_are_errors() {
        let mut out = Vec::new();
        // 30 ones = EOS, plus two bits of padding.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out, 100),
            Err(HpackError::HuffmanEos)
        );
        // 'a' = 00011, then 11 one-bits: padding longer than 7 bits.
        assert_eq!(
            decode(&[0x1f, 0xff], &mut out, 100),
            Err(HpackError::HuffmanPadding)
        );
        // 'a' then three zero bits: padding that is not a prefix of EOS.
        assert_eq!(
            decode(&[0x18], &mut out, 100),
            Err(HpackError::HuffmanPadding)
        );
        // 'a' then three one bits: fine.
        out.clear();
        decode(&[0x1f], &mut out, 100).unwrap();
        assert_eq!(out, b"a");
    }

    #[test]
    fn output_is_capped() {
        let mut coded = Vec::new();
        encode(&[b'a'; 100], &mut coded);
        let mut out = Vec::new();
        assert_eq!(
            decode(&coded, &mut out, 10),
            Err(HpackError::StringTooLong { limit: 10 })
        );
        assert!(out.len() <= 10);
    }

    #[test]
    fn validate_reports_what_decode_reports() {
        let mut coded = Vec::new();
        encode(b"www.example.com", &mut coded);
        assert_eq!(validate(&coded), Ok(()));
        assert_eq!(
            validate(&[0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::HuffmanEos)
        );
        assert_eq!(validate(&[0x1f, 0xff]), Err(HpackError::HuffmanPadding));
        assert_eq!(validate(&[0x18]), Err(HpackError::HuffmanPadding));
        assert_eq!(validate(&[]), Ok(()));
    }
}
