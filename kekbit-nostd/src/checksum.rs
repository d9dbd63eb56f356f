//! CRC32C (Castagnoli), the checksum of headers and records.
//!
//! On x86-64 processors with SSE4.2 (detected once, at run time, with
//! `cpuid`, which needs no operating system) the `crc32` instruction does
//! the work, several times faster than any table; elsewhere, and under miri,
//! the `crc` crate's tables do.

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
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if hardware::available() {
        // SAFETY: `available` confirmed the processor has SSE4.2.
        return unsafe { !hardware::update(!0, bytes) };
    }
    CRC32C.checksum(bytes)
}

/// CRC32C of a record: its payload length (little-endian `u32`), then its
/// payload, so a torn length is caught as surely as a torn payload.
pub(crate) fn record(payload: &[u8]) -> u32 {
    // Lengths are checked against MAX_RECORD_LEN_LIMIT before this is called.
    let len = (payload.len() as u32).to_le_bytes();
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if hardware::available() {
        // SAFETY: `available` confirmed the processor has SSE4.2.
        return unsafe { !hardware::update(hardware::update(!0, &len), payload) };
    }
    table_record(&len, payload)
}

/// The CRC32C a record carries in its checksum word when the channel has
/// [`FLAG_CHECKSUMS`](crate::format::FLAG_CHECKSUMS): of the payload's
/// length as a little-endian `u32`, then the payload. `None` for a payload
/// longer than any record can be.
///
/// The reader checks this itself; tools that inspect raw channel bytes
/// (`kekbit verify`) call it so the rule lives in one place.
///
/// # Example
///
/// ```
/// assert_eq!(kekbit_nostd::record_checksum(b""), Some(0x48674BC7));
/// assert_ne!(kekbit_nostd::record_checksum(b"a"), kekbit_nostd::record_checksum(b"b"));
/// ```
pub fn record_checksum(payload: &[u8]) -> Option<u32> {
    (payload.len() <= crate::format::MAX_RECORD_LEN_LIMIT as usize).then(|| record(payload))
}

fn table_record(len: &[u8; 4], payload: &[u8]) -> u32 {
    let mut digest = CRC32C.digest();
    digest.update(len);
    digest.update(payload);
    digest.finalize()
}

/// CRC32C with the SSE4.2 `crc32` instruction.
#[cfg(all(target_arch = "x86_64", not(miri)))]
mod hardware {
    use core::arch::x86_64::{__cpuid, _mm_crc32_u8, _mm_crc32_u64};
    use core::sync::atomic::{AtomicU8, Ordering};

    const UNKNOWN: u8 = 0;
    const ABSENT: u8 = 1;
    const PRESENT: u8 = 2;

    /// Whether SSE4.2 is present: probed once, then cached. Racing first
    /// probes store the same answer, so loads and stores suffice.
    static SSE42: AtomicU8 = AtomicU8::new(UNKNOWN);

    #[inline]
    pub(super) fn available() -> bool {
        match SSE42.load(Ordering::Relaxed) {
            PRESENT => true,
            ABSENT => false,
            _ => {
                // CPUID leaf 1, ECX bit 20: SSE4.2.
                #[allow(unused_unsafe)] // `__cpuid` is safe from Rust 1.88 on
                // SAFETY: every x86-64 processor has `cpuid` and leaf 1.
                let present = unsafe { __cpuid(1) }.ecx & (1 << 20) != 0;
                SSE42.store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
                present
            }
        }
    }

    /// Feeds `data` into a running (reflected, not inverted) CRC32C state.
    ///
    /// # Safety
    ///
    /// The processor supports SSE4.2 ([`available`] returned `true`);
    /// without it the `crc32` instruction is an illegal instruction.
    #[target_feature(enable = "sse4.2")]
    pub(super) unsafe fn update(state: u32, data: &[u8]) -> u32 {
        let mut words = data.chunks_exact(8);
        let mut wide = u64::from(state);
        for word in &mut words {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            #[allow(unused_unsafe)] // safe under `target_feature` from Rust 1.87 on
            // SAFETY: the caller promises SSE4.2 (this function's contract).
            let next = unsafe { _mm_crc32_u64(wide, u64::from_le_bytes(bytes)) };
            wide = next;
        }
        // The instruction keeps the 32-bit state in the low half.
        let mut state = wide as u32;
        for &byte in words.remainder() {
            #[allow(unused_unsafe)] // safe under `target_feature` from Rust 1.87 on
            // SAFETY: the caller promises SSE4.2 (this function's contract).
            let next = unsafe { _mm_crc32_u8(state, byte) };
            state = next;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_crc32c() {
        // The standard check value of CRC-32/ISCSI.
        assert_eq!(super::header(b"123456789"), 0xE306_9283);
        assert_eq!(super::CRC32C.checksum(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn record_covers_the_length() {
        assert_ne!(super::record(b""), super::record(b"\0"));
        assert_ne!(super::record(b"ab"), super::header(b"ab"));
    }

    #[test]
    fn every_implementation_agrees() {
        // Lengths around the 8-byte words the instruction path consumes.
        let data: std::vec::Vec<u8> = (0..300u32).map(|i| (i * 7 + i / 3) as u8).collect();
        // Miri has no `crc32` instruction to compare with: a lighter walk.
        let step = if cfg!(miri) { 37 } else { 1 };
        for len in (0..data.len()).step_by(step) {
            for start in [0, 1, 3] {
                let payload = &data[start..len.max(start)];
                let len_le = (payload.len() as u32).to_le_bytes();
                assert_eq!(
                    super::record(payload),
                    super::table_record(&len_le, payload)
                );
                assert_eq!(super::header(payload), super::CRC32C.checksum(payload));
            }
        }
    }
}
