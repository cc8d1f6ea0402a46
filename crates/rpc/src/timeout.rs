//! `grpc-timeout` (gRPC over HTTP/2 spec): `TimeoutValue TimeoutUnit`, at most 8 ASCII digits
//! and one of `H` (hours), `M` (minutes), `S`, `m` (ms), `u` (µs), `n` (ns).

use std::time::Duration;

/// Parses a `grpc-timeout` value; None when it breaks the grammar.
pub fn parse(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats a timeout in the finest unit whose value fits in 8 digits (rounding up, so a
/// deadline is never shortened by formatting). Durations beyond 99 999 999 hours saturate.
pub fn format(timeout: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    for (unit, per) in [
        ('n', 1u128),
        ('u', 1_000),
        ('m', 1_000_000),
        ('S', 1_000_000_000),
        ('M', 60_000_000_000),
        ('H', 3_600_000_000_000),
    ] {
        let v = nanos.div_ceil(per);
        if v <= MAX {
            return format!("{v}{unit}");
        }
    }
    format!("{MAX}H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
    }

    #[test]
    fn rejects_what_the_grammar_forbids() {
        for bad in [
            &b""[..],
            b"S",
            b"123456789S",
            b"1x",
            b"-1S",
            b"1.5S",
            b" 1S",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn formats_the_finest_unit_that_fits_and_never_shortens() {
        assert_eq!(format(Duration::from_millis(100)), "100000u");
        assert_eq!(format(Duration::from_secs(30)), "30000000u");
        assert_eq!(format(Duration::from_secs(3600 * 24 * 365)), "31536000S");
        assert_eq!(format(Duration::from_nanos(1)), "1n");
        for d in [
            Duration::from_nanos(123_456_789_123),
            Duration::from_secs(12345),
            Duration::from_micros(1),
        ] {
            assert!(parse(format(d).as_bytes()).unwrap() >= d);
        }
        assert_eq!(format(Duration::MAX), "99999999H");
    }
}
