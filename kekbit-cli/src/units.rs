//! Sizes (`64KiB`) and durations (`500ms`) as people type them.

use std::time::Duration;

/// The size units `parse_size` accepts, with their factors. Matched
/// case-insensitively; the bare letters are binary, as in `dd` and `ls`.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("kb", 1_000),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("mb", 1_000_000),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("gb", 1_000_000_000),
];

/// The duration units `parse_duration` accepts, in nanoseconds.
const DURATION_UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a byte count: a whole number with an optional unit, such as
/// `4096`, `64KiB`, `1MiB`, `10MB` or `1G`.
///
/// # Example
///
/// ```
/// use kekbit_cli::units::parse_size;
/// assert_eq!(parse_size("64KiB"), Ok(65_536));
/// assert_eq!(parse_size("1MiB"), Ok(1 << 20));
/// assert_eq!(parse_size("512"), Ok(512));
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let help = "expected a whole number of bytes with an optional unit \
                (B, KiB, MiB, GiB, KB, MB, GB), such as 4096 or 64KiB";
    let trimmed = text.trim();
    let (digits, unit) = split_number(trimmed);
    if digits.is_empty() {
        return Err(format!("invalid size '{text}': {help}"));
    }
    let unit = unit.trim();
    let factor = if unit.is_empty() {
        1
    } else {
        match SIZE_UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        {
            Some(&(_, factor)) => factor,
            None => {
                return Err(format!(
                    "invalid size '{text}': unknown unit '{unit}'; {help}"
                ));
            }
        }
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size '{text}': the number is too large"))?;
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("invalid size '{text}': the number is too large"))
}

/// Parses a duration: one or more numbers, each with a unit (`ns`, `us`,
/// `ms`, `s`, `m`, `h`), such as `500ms`, `30s`, `2m` or `1m30s`. A bare
/// `0` is allowed; any other number needs its unit.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use kekbit_cli::units::parse_duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("30").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let help = "expected a number with a unit (ns, us, ms, s, m, h), such as 500ms, 30s or 1m30s";
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(format!("invalid duration '{text}': {help}"));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (digits, after) = split_number(rest);
        if digits.is_empty() {
            return Err(format!("invalid duration '{text}': {help}"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        rest = &after[unit_len..];
        if unit.is_empty() {
            return Err(format!(
                "invalid duration '{text}': '{digits}' has no unit; {help}"
            ));
        }
        let Some(&(_, nanos)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "invalid duration '{text}': unknown unit '{unit}'; {help}"
            ));
        };
        let value: u64 = digits
            .parse()
            .map_err(|_| format!("invalid duration '{text}': the number is too large"))?;
        total = value
            .checked_mul(nanos)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| format!("invalid duration '{text}': too long"))?;
    }
    Ok(Duration::from_nanos(total))
}

/// Splits leading ASCII digits from the rest.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Formats a byte count for people: `64 KiB`, `1.5 MiB`, `100 B`.
///
/// # Example
///
/// ```
/// use kekbit_cli::units::human_bytes;
/// assert_eq!(human_bytes(65_536), "64 KiB");
/// assert_eq!(human_bytes(1_572_864), "1.5 MiB");
/// assert_eq!(human_bytes(100), "100 B");
/// ```
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // 1023.96 KiB would print as "1024 KiB": move up a unit before that.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

/// Formats a duration in nanoseconds for people: `850 ns`, `12.3 µs`, `4.1 ms`, `2.0 s`.
///
/// # Example
///
/// ```
/// use kekbit_cli::units::human_nanos;
/// assert_eq!(human_nanos(850), "850 ns");
/// assert_eq!(human_nanos(12_345), "12.3 µs");
/// assert_eq!(human_nanos(2_000_000_000), "2.00 s");
/// ```
pub fn human_nanos(nanos: u64) -> String {
    let n = nanos as f64;
    if nanos < 1_000 {
        format!("{nanos} ns")
    } else if nanos < 1_000_000 {
        format!("{:.1} µs", n / 1e3)
    } else if nanos < 1_000_000_000 {
        format!("{:.1} ms", n / 1e6)
    } else {
        format!("{:.2} s", n / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_every_unit() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("64kib"), Ok(64 << 10));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_size(" 2M "), Ok(2 << 20));
        assert_eq!(parse_size("3GiB"), Ok(3 << 30));
        assert_eq!(parse_size("3GB"), Ok(3_000_000_000));
    }

    #[test]
    fn sizes_reject_junk_with_a_reason() {
        for junk in [
            "",
            " ",
            "KiB",
            "-1",
            "1.5MiB",
            "64XB",
            "64 KiB extra",
            "0x10",
            "1e6",
            "lots",
        ] {
            let err = parse_size(junk).unwrap_err();
            assert!(err.starts_with("invalid size"), "{junk:?}: {err}");
        }
        let err = parse_size("99999999999999999999").unwrap_err();
        assert!(err.contains("too large"), "{err}");
        let err = parse_size("17179869184GiB").unwrap_err();
        assert!(err.contains("too large"), "{err}");
        assert!(
            parse_size("64XB")
                .unwrap_err()
                .contains("unknown unit 'XB'")
        );
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ns"), Ok(Duration::from_nanos(250)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn durations_reject_junk_with_a_reason() {
        for junk in [
            "", "30", "ms", "5 s", "1.5s", "-1s", "10x", "10S", "1m30", "forever",
        ] {
            let err = parse_duration(junk).unwrap_err();
            assert!(err.starts_with("invalid duration"), "{junk:?}: {err}");
        }
        assert!(parse_duration("30").unwrap_err().contains("has no unit"));
        assert!(
            parse_duration("99999999999h")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn human_figures() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes(72 << 20), "72 MiB");
        assert_eq!(human_bytes(1_048_544), "1 MiB");
        assert_eq!(human_bytes(1_048_000), "1023.4 KiB");
        assert_eq!(human_nanos(999), "999 ns");
        assert_eq!(human_nanos(1_500), "1.5 µs");
        assert_eq!(human_nanos(4_100_000), "4.1 ms");
    }
}
