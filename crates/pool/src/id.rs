//! Stream IDs (seeds/001): 4 random octets chosen by the server, sent raw as the first 4
//! octets of the response body, named by their 8-character lowercase hex form. The first
//! stream of a pool's life has ID `00000000`: applications use it as their control channel.

use std::fmt;
use std::str::FromStr;

/// A pool stream ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolStreamId(pub [u8; 4]);

impl PoolStreamId {
    /// `00000000`, the control stream (the first stream of a pool's life).
    pub const CONTROL: PoolStreamId = PoolStreamId([0; 4]);

    /// A fresh ID from the operating system's cryptographic RNG, never the control ID.
    pub fn random() -> Result<PoolStreamId, getrandom::Error> {
        loop {
            let mut b = [0u8; 4];
            getrandom::getrandom(&mut b)?;
            if b != [0; 4] {
                return Ok(PoolStreamId(b));
            }
        }
    }

    /// The 8-character lowercase hex name.
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for PoolStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PoolStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolStreamId({})", self.to_hex())
    }
}

/// Why a text is not a stream ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream ID {0:?} is not 8 lowercase hex characters")]
pub struct BadId(pub String);

impl FromStr for PoolStreamId {
    type Err = BadId;
    /// Parses exactly 8 lowercase hex characters (the form both libraries print).
    fn from_str(s: &str) -> Result<PoolStreamId, BadId> {
        let bytes = s.as_bytes();
        if bytes.len() != 8
            || !bytes
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        {
            return Err(BadId(s.to_string()));
        }
        let mut out = [0u8; 4];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| BadId(s.to_string()))?;
        }
        Ok(PoolStreamId(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_names_round_trip_and_are_lowercase() {
        let id = PoolStreamId([0xa1, 0xb2, 0xc3, 0xd4]);
        assert_eq!(id.to_string(), "a1b2c3d4");
        assert_eq!("a1b2c3d4".parse::<PoolStreamId>(), Ok(id));
        assert_eq!(PoolStreamId::CONTROL.to_string(), "00000000");
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in [
            "A1B2C3D4",
            "a1b2c3d",
            "a1b2c3d4e",
            "g1b2c3d4",
            "",
            "+1b2c3d4",
        ] {
            assert!(bad.parse::<PoolStreamId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn random_ids_are_never_the_control_id_and_vary() {
        let ids: std::collections::HashSet<_> =
            (0..1000).map(|_| PoolStreamId::random().unwrap()).collect();
        assert!(!ids.contains(&PoolStreamId::CONTROL));
        assert!(
            ids.len() > 990,
            "1000 random 32-bit IDs should almost never collide"
        );
    }
}
