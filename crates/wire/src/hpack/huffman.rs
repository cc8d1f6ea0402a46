//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//!
//! Decoding is table driven: the input is read into a 64-bit bit buffer and its next
//! [`FAST_BITS`] bits index a table that gives the one or two whole symbols they begin with
//! and the bits those take. That covers every code of up to 12 bits — all letters, digits
//! and common punctuation — and, for the 5- to 7-bit codes of lowercase letters and digits,
//! usually two symbols per lookup. The rarer longer codes (13 to 30 bits) are resolved with
//! the tables of the canonical code (Appendix B's code is canonical: within one length,
//! codes are consecutive in symbol order), one comparison per length. The tables are built
//! once, on first use, from Appendix B.
//!
//! Errors required by §5.2: a string that contains the EOS symbol, and padding longer than
//! 7 bits or not made of the most significant bits of EOS (all ones).

use std::sync::OnceLock;

use super::tables::HUFFMAN_CODES;
use super::HpackError;

const EOS: u16 = 256;

/// Bits of lookahead resolved by one lookup in the fast table.
const FAST_BITS: u32 = 12;

/// The longest code (EOS and a few control octets).
const MAX_CODE_LEN: usize = 30;

// Layout of a fast-table entry (0: the first code is longer than FAST_BITS).
const SYM2_SHIFT: u32 = 8;
const TOTAL_SHIFT: u32 = 16; // 5 bits: bits taken by all symbols of the entry
const LEN1_SHIFT: u32 = 21; // 4 bits: bits taken by the first symbol
const TWO: u32 = 1 << 25; // the entry holds a second symbol

struct Tables {
    /// Indexed by the next `FAST_BITS` bits: the symbol(s) they begin with (see the
    /// layout constants above).
    fast: Box<[u32; 1 << FAST_BITS]>,
    /// For each code length: the first code of that length (canonical numbering) ...
    first: [u32; MAX_CODE_LEN + 1],
    /// ... how many codes have it ...
    count: [u32; MAX_CODE_LEN + 1],
    /// ... and where its symbols start in `sorted`.
    offset: [usize; MAX_CODE_LEN + 1],
    /// Symbols sorted by (code length, symbol): canonical order.
    sorted: Vec<u16>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(build)
}

fn build() -> Tables {
    let mut count = [0u32; MAX_CODE_LEN + 1];
    for &(_, len) in HUFFMAN_CODES.iter() {
        count[usize::from(len)] += 1;
    }
    let mut first = [0u32; MAX_CODE_LEN + 1];
    let mut offset = [0usize; MAX_CODE_LEN + 1];
    let (mut code, mut at) = (0u32, 0usize);
    for len in 1..=MAX_CODE_LEN {
        first[len] = code;
        offset[len] = at;
        code = (code + count[len]) << 1;
        at += count[len] as usize;
    }
    let mut sorted: Vec<u16> = (0..=EOS).collect();
    sorted.sort_by_key(|&s| (HUFFMAN_CODES[usize::from(s)].1, s));
    // One symbol per slot first: (symbol, length) of the code the slot's bits begin with.
    let mut single = vec![None; 1 << FAST_BITS];
    for (symbol, &(code, len)) in HUFFMAN_CODES.iter().enumerate() {
        let len = u32::from(len);
        if len <= FAST_BITS {
            let base = (code << (FAST_BITS - len)) as usize;
            for slot in &mut single[base..base + (1 << (FAST_BITS - len))] {
                *slot = Some((symbol as u32, len));
            }
        }
    }
    // Then a second symbol when its whole code fits in the bits left.
    let mask = (1usize << FAST_BITS) - 1;
    let mut fast = Box::new([0u32; 1 << FAST_BITS]);
    for (bits, slot) in fast.iter_mut().enumerate() {
        *slot = match single[bits] {
            None => 0,
            Some((s1, l1)) => {
                let one = s1 | l1 << TOTAL_SHIFT | l1 << LEN1_SHIFT;
                match single[(bits << l1) & mask] {
                    Some((s2, l2)) if l1 + l2 <= FAST_BITS => {
                        s1 | s2 << SYM2_SHIFT | (l1 + l2) << TOTAL_SHIFT | l1 << LEN1_SHIFT | TWO
                    }
                    _ => one,
                }
            }
        };
    }
    Tables {
        fast,
        first,
        count,
        offset,
        sorted,
    }
}

impl Tables {
    /// The fast-table entry for the bits at the top of `peek`.
    #[inline(always)]
    fn entry(&self, peek: u64) -> u32 {
        // The mask keeps the index inside the array: no bounds check in the hot loop.
        self.fast[(peek >> (64 - FAST_BITS)) as usize & ((1 << FAST_BITS) - 1)]
    }

    /// The (symbol, length) of the one code at the top of `peek` (MSB-aligned, at least 30
    /// valid or one-filled bits).
    #[inline]
    fn symbol(&self, peek: u64) -> (u16, u32) {
        let entry = self.entry(peek);
        if entry != 0 {
            return ((entry & 0xff) as u16, (entry >> LEN1_SHIFT) & 0xf);
        }
        self.long_symbol((peek >> 32) as u32)
    }

    #[cold]
    fn long_symbol(&self, top: u32) -> (u16, u32) {
        for len in FAST_BITS as usize + 1..=MAX_CODE_LEN {
            let d = (top >> (32 - len)).wrapping_sub(self.first[len]);
            if d < self.count[len] {
                let symbol = self.sorted.get(self.offset[len] + d as usize);
                return (symbol.copied().unwrap_or(EOS), len as u32);
            }
        }
        // Unreachable for a complete code (Kraft equality holds for Appendix B); an error
        // rather than a panic all the same.
        (EOS, MAX_CODE_LEN as u32)
    }
}

/// Decodes a Huffman-coded string, appending to `dst`. Fails with the §5.2 errors, or with
/// [`HpackError::StringTooLong`] as soon as the output would pass `limit` octets.
pub fn decode(src: &[u8], dst: &mut Vec<u8>, limit: usize) -> Result<(), HpackError> {
    // The shortest code is 5 bits: the output is at most 8/5 of the input. Writing into a
    // sized slice keeps the output cursor in registers.
    let start = dst.len();
    let room = (src.len().saturating_mul(8) / 5 + 1).min(limit);
    dst.resize(start + room, 0);
    let mut written = 0usize;
    let result = match dst.get_mut(start..) {
        Some(out) => walk(src, |symbol| match out.get_mut(written) {
            Some(slot) => {
                *slot = symbol;
                written += 1;
                Ok(())
            }
            None => Err(HpackError::StringTooLong { limit }),
        }),
        None => Err(HpackError::StringTooLong { limit }),
    };
    dst.truncate(start + written);
    result
}

/// Checks a Huffman-coded string for the §5.2 errors without materialising it: used for a
/// string too long to keep, so that a bad coding is still reported without allocating.
pub fn validate(src: &[u8]) -> Result<(), HpackError> {
    walk(src, |_| Ok(()))
}

/// Decodes `src`, handing each symbol to `emit`.
#[inline(always)]
fn walk(src: &[u8], mut emit: impl FnMut(u8) -> Result<(), HpackError>) -> Result<(), HpackError> {
    let t = tables();
    // The next `bits` bits of input, most significant first; below them, zeros or (after a
    // word load) bits of the next octet, which a later load ORs in again unchanged.
    let mut acc = 0u64;
    let mut bits = 0u32;
    let mut pos = 0usize;
    loop {
        // Refill to at least 56 bits; fewer only when the input is exhausted.
        if let Some(word) = src.get(pos..).and_then(|rest| rest.first_chunk::<8>()) {
            acc |= u64::from_be_bytes(*word) >> bits;
            let take = (63 - bits) >> 3;
            pos += take as usize;
            bits += take << 3;
        } else {
            while bits <= 56 {
                let Some(&byte) = src.get(pos) else { break };
                acc |= u64::from(byte) << (56 - bits);
                bits += 8;
                pos += 1;
            }
        }
        // While at least 32 bits are buffered, any code (at most 30 bits) is whole.
        while bits >= 32 {
            let entry = t.entry(acc);
            if entry != 0 {
                emit(entry as u8)?;
                if entry & TWO != 0 {
                    emit((entry >> SYM2_SHIFT) as u8)?;
                }
                let total = (entry >> TOTAL_SHIFT) & 0x1f;
                acc <<= total;
                bits -= total;
            } else {
                let (symbol, len) = t.long_symbol((acc >> 32) as u32);
                if symbol == EOS {
                    return Err(HpackError::HuffmanEos);
                }
                emit(symbol as u8)?;
                acc <<= len;
                bits -= len;
            }
        }
        if bits < 32 && pos >= src.len() {
            // The tail, one symbol at a time. Padding: fewer than 8 bits, all ones (no code
            // shorter than 30 bits is all ones, so such a tail cannot be a symbol).
            if bits == 0 || (bits < 8 && acc >> (64 - bits) == (1u64 << bits) - 1) {
                return Ok(());
            }
            // Fill the bits past the end with ones (the EOS prefix) to look the code up; a
            // code that needs them is truncated, i.e. bad padding.
            let (symbol, len) = t.symbol(acc | u64::MAX >> bits);
            if len > bits {
                return Err(HpackError::HuffmanPadding);
            }
            if symbol == EOS {
                return Err(HpackError::HuffmanEos);
            }
            emit(symbol as u8)?;
            acc <<= len;
            bits -= len;
        }
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
    // Codes accumulate in the low bits of `acc`; 32 bits go out at a time. Before a code is
    // added fewer than 32 bits are pending and a code has at most 30: no overflow. Bits above
    // the pending ones are stale and never written.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = HUFFMAN_CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        if bits >= 32 {
            bits -= 32;
            dst.put_u32((acc >> bits) as u32);
        }
    }
    while bits >= 8 {
        bits -= 8;
        dst.put_u8((acc >> bits) as u8);
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.put_u8(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The previous decoder, a nibble automaton over the code tree: kept as an oracle for
    /// the lookup-table decoder.
    mod nibble {
        use crate::hpack::tables::HUFFMAN_CODES;
        use crate::hpack::HpackError;
        use std::sync::OnceLock;

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

        pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
            walk(src, |b| {
                dst.push(b);
                Ok(())
            })
        }

        /// Runs the nibble automaton over `src`, handing each decoded symbol to `emit`.
        #[inline(always)]
        fn walk(
            src: &[u8],
            mut emit: impl FnMut(u8) -> Result<(), HpackError>,
        ) -> Result<(), HpackError> {
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
    }

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

    #[test]
    fn every_long_code_is_found_by_the_canonical_tables() {
        let t = tables();
        for (symbol, &(code, len)) in HUFFMAN_CODES.iter().enumerate() {
            // The code followed by ones, MSB-aligned in 64 bits.
            let peek = (u64::from(code) << (64 - u32::from(len))) | (u64::MAX >> len);
            assert_eq!(t.symbol(peek), (symbol as u16, u32::from(len)), "{symbol}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_nibble_automaton_on_any_input(
            src in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let a = decode(&src, &mut fast, usize::MAX);
            let b = nibble::decode(&src, &mut slow);
            prop_assert_eq!(&a, &b);
            if a.is_ok() {
                prop_assert_eq!(fast, slow);
            }
        }

        #[test]
        fn agrees_with_the_nibble_automaton_on_valid_codings(
            text in proptest::collection::vec(any::<u8>(), 0..200),
            junk in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let mut src = Vec::new();
            encode(&text, &mut src);
            let mut out = Vec::new();
            prop_assert_eq!(decode(&src, &mut out, usize::MAX), Ok(()));
            prop_assert_eq!(&out, &text);
            // And with a few arbitrary octets after it.
            src.extend_from_slice(&junk);
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let a = decode(&src, &mut fast, usize::MAX);
            prop_assert_eq!(&a, &nibble::decode(&src, &mut slow));
            if a.is_ok() {
                prop_assert_eq!(fast, slow);
            }
        }
    }
}
