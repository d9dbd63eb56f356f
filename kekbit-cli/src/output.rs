//! How `kekbit cat` prints a record: raw text, hex, or one JSON object.

use std::io::{self, Write};

use clap::ValueEnum;

/// How `cat` prints each record; every format puts one record per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordFormat {
    /// The payload's raw bytes, then a newline.
    Text,
    /// The payload as lower-case hex digits.
    Hex,
    /// `{"position":P,"length":L,"payload":"..."}`; a payload that is not
    /// UTF-8 comes as `"payload_hex":"..."` instead.
    Json,
}

/// Writes one record in `format`, with its position: the offset in a
/// channel's record area, or a journal position.
///
/// # Example
///
/// ```
/// use kekbit_cli::output::{RecordFormat, write_record};
///
/// let mut out = Vec::new();
/// write_record(&mut out, RecordFormat::Json, 16, b"hi \"there\"")?;
/// write_record(&mut out, RecordFormat::Json, 40, &[0xff, 0x00])?;
/// write_record(&mut out, RecordFormat::Hex, 56, b"AZ")?;
/// assert_eq!(
///     String::from_utf8(out)?,
///     "{\"position\":16,\"length\":10,\"payload\":\"hi \\\"there\\\"\"}\n\
///      {\"position\":40,\"length\":2,\"payload_hex\":\"ff00\"}\n\
///      415a\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_record(
    out: &mut impl Write,
    format: RecordFormat,
    position: u64,
    payload: &[u8],
) -> io::Result<()> {
    match format {
        RecordFormat::Text => {
            out.write_all(payload)?;
        }
        RecordFormat::Hex => write_hex(out, payload)?,
        RecordFormat::Json => {
            write!(
                out,
                "{{\"position\":{position},\"length\":{}",
                payload.len()
            )?;
            match std::str::from_utf8(payload) {
                Ok(text) => {
                    out.write_all(b",\"payload\":")?;
                    // Serialising a `str` to a writer fails only when the
                    // writer does; pass that error on.
                    serde_json::to_writer(&mut *out, text).map_err(io::Error::from)?;
                }
                Err(_) => {
                    out.write_all(b",\"payload_hex\":\"")?;
                    write_hex(out, payload)?;
                    out.write_all(b"\"")?;
                }
            }
            out.write_all(b"}")?;
        }
    }
    out.write_all(b"\n")
}

/// Writes `bytes` as lower-case hex digits.
///
/// # Example
///
/// ```
/// let mut out = Vec::new();
/// kekbit_cli::output::write_hex(&mut out, &[0x00, 0xab, 0x7f])?;
/// assert_eq!(out, b"00ab7f");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_hex(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 256];
    for chunk in bytes.chunks(buf.len() / 2) {
        for (pair, byte) in buf.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        out.write_all(&buf[..chunk.len() * 2])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: RecordFormat, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_record(&mut out, format, 8, payload).unwrap();
        out
    }

    #[test]
    fn text_is_raw() {
        assert_eq!(render(RecordFormat::Text, b"a\xffb"), b"a\xffb\n");
        assert_eq!(render(RecordFormat::Text, b""), b"\n");
    }

    #[test]
    fn hex_covers_long_payloads() {
        let payload: Vec<u8> = (0..=255).collect();
        let out = render(RecordFormat::Hex, &payload);
        assert_eq!(out.len(), 513);
        assert!(out.starts_with(b"000102"));
        assert!(out.ends_with(b"fdfeff\n"));
    }

    #[test]
    fn json_is_valid_for_any_payload() {
        let cases: [&[u8]; 5] = [
            b"",
            b"plain",
            b"tab\tnew\nline\"\\",
            b"\xff\xfe",
            "é".as_bytes(),
        ];
        for payload in cases {
            let out = render(RecordFormat::Json, payload);
            let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(value["position"], 8);
            assert_eq!(value["length"], payload.len());
            match std::str::from_utf8(payload) {
                Ok(text) => assert_eq!(value["payload"], text),
                Err(_) => assert_eq!(value["payload_hex"], "fffe"),
            }
        }
    }
}
