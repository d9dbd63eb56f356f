//! CRC32C (Castagnoli), the checksum of headers and records.

use crc::{CRC_32_ISCSI, Crc};

// Firmware gets the 1 KiB table; hosts get the 16 KiB slicing table, which
// is several times faster on long records.
#[cfg(target_os = "none")]
type Table = crc::Table<1>;
#[cfg(not(target_os = "none"))]
type Table = crc::Table<16>;

static CRC32C: Crc<u32, Table> = Crc::<u32, Table>::new(&CRC_32_ISCSI);

/// CRC32C of a header's immutable bytes.
pub(crate) fn header(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

/// CRC32C of a record: its payload length (little-endian `u32`), then its
/// payload, so a torn length is caught as surely as a torn payload.
pub(crate) fn record(payload: &[u8]) -> u32 {
    let mut digest = CRC32C.digest();
    // Lengths are checked against MAX_RECORD_LEN_LIMIT before this is called.
    digest.update(&(payload.len() as u32).to_le_bytes());
    digest.update(payload);
    digest.finalize()
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_crc32c() {
        // The standard check value of CRC-32/ISCSI.
        assert_eq!(super::header(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn record_covers_the_length() {
        assert_ne!(super::record(b""), super::record(b"\0"));
        assert_ne!(super::record(b"ab"), super::header(b"ab"));
    }
}
