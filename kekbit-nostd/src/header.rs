//! The channel header: what it holds, how it is encoded, how it is validated.

use crate::checksum;
use crate::clock::TickUnit;
use crate::error::HeaderError;
use crate::format::*;

/// A channel's immutable header, decoded and validated.
///
/// The writer writes it once, before any reader can open the channel; it
/// never changes afterwards. Every field is little-endian in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Format version; always [`VERSION`] once validated.
    pub version: u32,
    /// Flag bits; see [`FLAG_CHECKSUMS`].
    pub flags: u32,
    /// Identifies the writer, for the application's own bookkeeping.
    pub writer_id: u64,
    /// Identifies the channel, for the application's own bookkeeping.
    pub channel_id: u64,
    /// Bytes in the record area, after the header; a multiple of 8.
    pub capacity_bytes: u32,
    /// The longest payload one record may have.
    pub max_record_len: u32,
    /// Silence after which readers call the writer abandoned, in ticks;
    /// `0` turns abandonment detection off.
    pub timeout_ticks: u64,
    /// When the channel was created, in ticks of the writer's clock.
    pub creation_time: u64,
    /// The unit of the time fields.
    pub tick_unit: TickUnit,
    /// The journal this channel is a segment of; 0 unless
    /// [`FLAG_SEGMENT`] is set.
    pub journal_id: u64,
    /// The journal position of the segment's first record-area byte: a
    /// record at offset `p` in this channel is at journal position
    /// `base_position + p`. A multiple of 8; 0 unless [`FLAG_SEGMENT`].
    pub base_position: u64,
}

impl Header {
    /// Whether records carry a CRC32C.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::ChannelConfig;
    /// let header = ChannelConfig::new(1).checksums(true).header_for(4096)?;
    /// assert!(header.checksums());
    /// # Ok::<(), kekbit_nostd::HeaderError>(())
    /// ```
    pub const fn checksums(&self) -> bool {
        self.flags & FLAG_CHECKSUMS != 0
    }

    /// Whether the time fields count ticks since the Unix epoch (see
    /// [`FLAG_EPOCH_TIME`]).
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::ChannelConfig;
    /// let header = ChannelConfig::new(1).epoch_time(true).header_for(4096)?;
    /// assert!(header.epoch_time());
    /// # Ok::<(), kekbit_nostd::HeaderError>(())
    /// ```
    pub const fn epoch_time(&self) -> bool {
        self.flags & FLAG_EPOCH_TIME != 0
    }

    /// Whether the channel is a journal segment (see [`FLAG_SEGMENT`]).
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::ChannelConfig;
    /// let header = ChannelConfig::new(1).segment(77, 4096).header_for(4096)?;
    /// assert!(header.is_segment());
    /// assert_eq!((header.journal_id, header.base_position), (77, 4096));
    /// # Ok::<(), kekbit_nostd::HeaderError>(())
    /// ```
    pub const fn is_segment(&self) -> bool {
        self.flags & FLAG_SEGMENT != 0
    }

    /// The largest maximum record length allowed for a record area of
    /// `capacity_bytes`: one record plus the end marker must fit.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::Header;
    /// assert_eq!(Header::max_record_len_limit(1024), 1024 - 16);
    /// ```
    pub const fn max_record_len_limit(capacity_bytes: u32) -> u32 {
        let fits = capacity_bytes.saturating_sub((PAYLOAD_OFFSET + MARKER_LEN) as u32);
        if fits < MAX_RECORD_LEN_LIMIT {
            fits
        } else {
            MAX_RECORD_LEN_LIMIT
        }
    }

    /// Encodes the header, computing its checksum.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{Header, TickUnit};
    ///
    /// let header = Header {
    ///     version: kekbit_nostd::format::VERSION,
    ///     flags: 0,
    ///     writer_id: 1,
    ///     channel_id: 7,
    ///     capacity_bytes: 4096,
    ///     max_record_len: 1024,
    ///     timeout_ticks: 1000,
    ///     creation_time: 0,
    ///     tick_unit: TickUnit::Millis,
    ///     journal_id: 0,
    ///     base_position: 0,
    /// };
    /// let bytes = header.encode();
    /// assert_eq!(Header::decode(&bytes), Ok(header));
    /// ```
    pub fn encode(&self) -> [u8; IMMUTABLE_HEADER_LEN] {
        let mut out = [0u8; IMMUTABLE_HEADER_LEN];
        out[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 8].copy_from_slice(&SIGNATURE);
        put_u32(&mut out, VERSION_OFFSET, self.version);
        put_u32(&mut out, FLAGS_OFFSET, self.flags);
        put_u64(&mut out, WRITER_ID_OFFSET, self.writer_id);
        put_u64(&mut out, CHANNEL_ID_OFFSET, self.channel_id);
        put_u32(&mut out, CAPACITY_OFFSET, self.capacity_bytes);
        put_u32(&mut out, MAX_RECORD_LEN_OFFSET, self.max_record_len);
        put_u64(&mut out, TIMEOUT_OFFSET, self.timeout_ticks);
        put_u64(&mut out, CREATION_TIME_OFFSET, self.creation_time);
        put_u32(&mut out, TICK_UNIT_OFFSET, self.tick_unit.code());
        put_u64(&mut out, JOURNAL_ID_OFFSET, self.journal_id);
        put_u64(&mut out, BASE_POSITION_OFFSET, self.base_position);
        let sum = checksum::header(&out[..HEADER_CHECKSUM_OFFSET]);
        put_u32(&mut out, HEADER_CHECKSUM_OFFSET, sum);
        out
    }

    /// Decodes and validates the immutable header at the start of `bytes`.
    ///
    /// Checks, in order: length, signature, version, checksum, flags,
    /// reserved bytes, tick unit, capacity, maximum record length and the
    /// segment fields. Whatever the bytes, it
    /// returns a typed error rather than panicking. It does not know the
    /// region's length; [`Header::check_region`] does that.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{Header, HeaderError};
    /// let err = Header::decode(&[0u8; 128]).unwrap_err();
    /// assert!(matches!(err, HeaderError::BadSignature { .. }));
    /// let err = Header::decode(&[0u8; 64]).unwrap_err();
    /// assert!(matches!(err, HeaderError::Truncated { len: 64, needed: 128 }));
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        let Some(bytes) = bytes.get(..IMMUTABLE_HEADER_LEN) else {
            return Err(HeaderError::Truncated {
                len: bytes.len(),
                needed: IMMUTABLE_HEADER_LEN,
            });
        };
        let mut signature = [0u8; 8];
        signature.copy_from_slice(&bytes[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 8]);
        if signature != SIGNATURE {
            return Err(HeaderError::BadSignature { found: signature });
        }
        let version = get_u32(bytes, VERSION_OFFSET);
        if version != VERSION {
            return Err(HeaderError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let stored = get_u32(bytes, HEADER_CHECKSUM_OFFSET);
        let computed = checksum::header(&bytes[..HEADER_CHECKSUM_OFFSET]);
        if stored != computed {
            return Err(HeaderError::BadHeaderChecksum { stored, computed });
        }
        let flags = get_u32(bytes, FLAGS_OFFSET);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(HeaderError::UnknownFlags {
                flags: flags & !KNOWN_FLAGS,
            });
        }
        if let Some(offset) = (RESERVED_A_OFFSET..RESERVED_A_OFFSET + 4)
            .chain(RESERVED_B_OFFSET..HEADER_CHECKSUM_OFFSET)
            .find(|&i| bytes[i] != 0)
        {
            return Err(HeaderError::ReservedNotZero { offset });
        }
        let code = get_u32(bytes, TICK_UNIT_OFFSET);
        let tick_unit = TickUnit::from_code(code).ok_or(HeaderError::UnknownTickUnit { code })?;
        let header = Self {
            version,
            flags,
            writer_id: get_u64(bytes, WRITER_ID_OFFSET),
            channel_id: get_u64(bytes, CHANNEL_ID_OFFSET),
            capacity_bytes: get_u32(bytes, CAPACITY_OFFSET),
            max_record_len: get_u32(bytes, MAX_RECORD_LEN_OFFSET),
            timeout_ticks: get_u64(bytes, TIMEOUT_OFFSET),
            creation_time: get_u64(bytes, CREATION_TIME_OFFSET),
            tick_unit,
            journal_id: get_u64(bytes, JOURNAL_ID_OFFSET),
            base_position: get_u64(bytes, BASE_POSITION_OFFSET),
        };
        header.check_fields()?;
        Ok(header)
    }

    /// Checks the fields that constrain each other: capacity, maximum
    /// record length and the segment fields.
    pub(crate) fn check_fields(&self) -> Result<(), HeaderError> {
        if self.version != VERSION {
            return Err(HeaderError::UnsupportedVersion {
                found: self.version,
                supported: VERSION,
            });
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(HeaderError::UnknownFlags {
                flags: self.flags & !KNOWN_FLAGS,
            });
        }
        let capacity = self.capacity_bytes;
        if capacity < MIN_CAPACITY || capacity % RECORD_ALIGN as u32 != 0 {
            return Err(HeaderError::CapacityOutOfRange {
                capacity,
                min: MIN_CAPACITY,
            });
        }
        let limit = Self::max_record_len_limit(capacity);
        if self.max_record_len == 0 || self.max_record_len > limit {
            return Err(HeaderError::MaxRecordLenOutOfRange {
                max_record_len: self.max_record_len,
                limit,
            });
        }
        if self.is_segment() {
            let base = self.base_position;
            if base % RECORD_ALIGN as u64 != 0 || base.checked_add(capacity as u64).is_none() {
                return Err(HeaderError::BasePositionOutOfRange {
                    base_position: base,
                });
            }
        } else if self.journal_id != 0 || self.base_position != 0 {
            return Err(HeaderError::SegmentFieldsWithoutFlag {
                journal_id: self.journal_id,
                base_position: self.base_position,
            });
        }
        Ok(())
    }

    /// Checks that a region of `region_len` bytes holds this header's
    /// record area.
    ///
    /// # Example
    ///
    /// ```
    /// # use kekbit_nostd::{Header, HeaderError, TickUnit};
    /// # let header = Header { version: 2, flags: 0, writer_id: 0, channel_id: 0,
    /// #     capacity_bytes: 4096, max_record_len: 64, timeout_ticks: 0,
    /// #     creation_time: 0, tick_unit: TickUnit::Millis, journal_id: 0, base_position: 0 };
    /// assert!(header.check_region(192 + 4096).is_ok());
    /// assert!(matches!(
    ///     header.check_region(192 + 4095),
    ///     Err(HeaderError::CapacityExceedsRegion { .. })
    /// ));
    /// ```
    pub fn check_region(&self, region_len: usize) -> Result<(), HeaderError> {
        let available = region_len.saturating_sub(HEADER_LEN);
        if self.capacity_bytes as usize > available {
            return Err(HeaderError::CapacityExceedsRegion {
                capacity: self.capacity_bytes,
                available,
            });
        }
        Ok(())
    }
}

fn put_u32(out: &mut [u8], offset: usize, value: u32) {
    out[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut [u8], offset: usize, value: u64) {
    out[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

// Offsets are constants within IMMUTABLE_HEADER_LEN and `bytes` has been cut
// to that length, so the slices below cannot fail.
fn get_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(word)
}

fn get_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

/// How to create a channel: everything the header records, with defaults.
///
/// # Example
///
/// ```
/// use kekbit_nostd::{ChannelConfig, TickUnit};
///
/// let config = ChannelConfig::new(42)
///     .writer_id(7)
///     .max_record_len(1024)
///     .timeout(5_000, TickUnit::Millis)
///     .checksums(true);
/// assert_eq!(config.channel_id, 42);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelConfig {
    /// The channel's id.
    pub channel_id: u64,
    /// The writer's id; defaults to 0.
    pub writer_id: u64,
    /// The longest record; `None` means the largest the capacity allows.
    pub max_record_len: Option<u32>,
    /// The record area's size; `None` means all of the region after the header.
    pub capacity_bytes: Option<u32>,
    /// Writer timeout in ticks; defaults to 0, no abandonment detection.
    pub timeout_ticks: u64,
    /// Unit of the time fields; defaults to milliseconds.
    pub tick_unit: TickUnit,
    /// Creation time in ticks; defaults to 0 where there is no clock.
    pub creation_time: u64,
    /// Whether records carry a CRC32C; defaults to off.
    pub checksums: bool,
    /// Whether the time fields count ticks since the Unix epoch; defaults
    /// to off (see [`FLAG_EPOCH_TIME`]).
    pub epoch_time: bool,
    /// `Some((journal_id, base_position))` makes the channel a journal
    /// segment; defaults to `None`.
    pub segment: Option<(u64, u64)>,
}

impl ChannelConfig {
    /// A configuration with the given channel id and every default.
    ///
    /// # Example
    ///
    /// ```
    /// let config = kekbit_nostd::ChannelConfig::new(3);
    /// assert_eq!((config.channel_id, config.checksums), (3, false));
    /// ```
    pub const fn new(channel_id: u64) -> Self {
        Self {
            channel_id,
            writer_id: 0,
            max_record_len: None,
            capacity_bytes: None,
            timeout_ticks: 0,
            tick_unit: TickUnit::Millis,
            creation_time: 0,
            checksums: false,
            epoch_time: false,
            segment: None,
        }
    }

    /// Sets the writer id.
    #[must_use]
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(kekbit_nostd::ChannelConfig::new(1).writer_id(9).writer_id, 9);
    /// ```
    pub const fn writer_id(mut self, id: u64) -> Self {
        self.writer_id = id;
        self
    }

    /// Sets the longest payload a record may have.
    #[must_use]
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(kekbit_nostd::ChannelConfig::new(1).max_record_len(64).max_record_len, Some(64));
    /// ```
    pub const fn max_record_len(mut self, len: u32) -> Self {
        self.max_record_len = Some(len);
        self
    }

    /// Sets the size of the record area; the region must hold it after the header.
    #[must_use]
    ///
    /// # Example
    ///
    /// ```
    /// let header = kekbit_nostd::ChannelConfig::new(1).capacity_bytes(256).header_for(4096)?;
    /// assert_eq!(header.capacity_bytes, 256);
    /// # Ok::<(), kekbit_nostd::HeaderError>(())
    /// ```
    pub const fn capacity_bytes(mut self, capacity: u32) -> Self {
        self.capacity_bytes = Some(capacity);
        self
    }

    /// Sets the writer timeout and the unit of every time field.
    #[must_use]
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::{ChannelConfig, TickUnit};
    /// let config = ChannelConfig::new(1).timeout(30, TickUnit::Seconds);
    /// assert_eq!((config.timeout_ticks, config.tick_unit), (30, TickUnit::Seconds));
    /// ```
    pub const fn timeout(mut self, ticks: u64, unit: TickUnit) -> Self {
        self.timeout_ticks = ticks;
        self.tick_unit = unit;
        self
    }

    /// Sets the creation time, in ticks of the configured unit.
    #[must_use]
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(kekbit_nostd::ChannelConfig::new(1).creation_time(5).creation_time, 5);
    /// ```
    pub const fn creation_time(mut self, ticks: u64) -> Self {
        self.creation_time = ticks;
        self
    }

    /// Turns per-record CRC32C checksums on or off.
    #[must_use]
    ///
    /// # Example
    ///
    /// ```
    /// assert!(kekbit_nostd::ChannelConfig::new(1).checksums(true).checksums);
    /// ```
    pub const fn checksums(mut self, on: bool) -> Self {
        self.checksums = on;
        self
    }

    /// Declares that the time fields (creation time, heartbeats) count ticks
    /// since the Unix epoch, as `kekbit-std`'s system clock does. A reader
    /// whose [`Clock`](crate::Clock) counts the same way then recognises a
    /// long-dead writer at its first look.
    #[must_use]
    ///
    /// # Example
    ///
    /// ```
    /// assert!(kekbit_nostd::ChannelConfig::new(1).epoch_time(true).epoch_time);
    /// ```
    pub const fn epoch_time(mut self, on: bool) -> Self {
        self.epoch_time = on;
        self
    }

    /// Makes the channel segment of journal `journal_id`, starting at
    /// journal position `base_position` (a multiple of 8).
    #[must_use]
    ///
    /// # Example
    ///
    /// ```
    /// let config = kekbit_nostd::ChannelConfig::new(1).segment(9, 1 << 20);
    /// assert_eq!(config.segment, Some((9, 1 << 20)));
    /// ```
    pub const fn segment(mut self, journal_id: u64, base_position: u64) -> Self {
        self.segment = Some((journal_id, base_position));
        self
    }

    /// The header this configuration gives for a region of `region_len`
    /// bytes, validated.
    ///
    /// # Example
    ///
    /// ```
    /// use kekbit_nostd::ChannelConfig;
    /// let header = ChannelConfig::new(1).header_for(192 + 1000)?;
    /// assert_eq!(header.capacity_bytes, 1000);
    /// assert_eq!(header.max_record_len, 1000 - 16);
    /// # Ok::<(), kekbit_nostd::HeaderError>(())
    /// ```
    pub fn header_for(&self, region_len: usize) -> Result<Header, HeaderError> {
        let available = region_len.saturating_sub(HEADER_LEN);
        let capacity_bytes = match self.capacity_bytes {
            Some(capacity) => capacity,
            None => (available.min(MAX_CAPACITY as usize) as u32) & !(RECORD_ALIGN as u32 - 1),
        };
        let mut flags = 0;
        if self.checksums {
            flags |= FLAG_CHECKSUMS;
        }
        if self.epoch_time {
            flags |= FLAG_EPOCH_TIME;
        }
        if self.segment.is_some() {
            flags |= FLAG_SEGMENT;
        }
        let (journal_id, base_position) = self.segment.unwrap_or((0, 0));
        let header = Header {
            version: VERSION,
            flags,
            writer_id: self.writer_id,
            channel_id: self.channel_id,
            capacity_bytes,
            max_record_len: self
                .max_record_len
                .unwrap_or(Header::max_record_len_limit(capacity_bytes)),
            timeout_ticks: self.timeout_ticks,
            creation_time: self.creation_time,
            tick_unit: self.tick_unit,
            journal_id,
            base_position,
        };
        header.check_fields()?;
        header.check_region(region_len)?;
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Header {
        ChannelConfig::new(9)
            .writer_id(3)
            .timeout(250, TickUnit::Micros)
            .creation_time(1234)
            .checksums(true)
            .epoch_time(true)
            .header_for(HEADER_LEN + 4096)
            .unwrap()
    }

    /// Changes bytes, then re-seals the checksum so the field check is what fails.
    fn tampered(edit: impl FnOnce(&mut [u8; IMMUTABLE_HEADER_LEN])) -> Result<Header, HeaderError> {
        let mut bytes = valid().encode();
        edit(&mut bytes);
        let sum = checksum::header(&bytes[..HEADER_CHECKSUM_OFFSET]);
        put_u32(&mut bytes, HEADER_CHECKSUM_OFFSET, sum);
        Header::decode(&bytes)
    }

    #[test]
    fn round_trips() {
        let header = valid();
        assert_eq!(Header::decode(&header.encode()), Ok(header));
    }

    #[test]
    fn rejects_truncation() {
        let bytes = valid().encode();
        for len in 0..IMMUTABLE_HEADER_LEN {
            assert_eq!(
                Header::decode(&bytes[..len]),
                Err(HeaderError::Truncated {
                    len,
                    needed: IMMUTABLE_HEADER_LEN
                })
            );
        }
    }

    #[test]
    fn rejects_bad_signature() {
        for i in 0..8 {
            let err = tampered(|b| b[i] ^= 0x20).unwrap_err();
            assert!(matches!(err, HeaderError::BadSignature { .. }), "{err}");
        }
    }

    #[test]
    fn rejects_other_versions() {
        for version in [0, 1, 3, u32::MAX] {
            let err = tampered(|b| put_u32(b, VERSION_OFFSET, version)).unwrap_err();
            assert_eq!(
                err,
                HeaderError::UnsupportedVersion {
                    found: version,
                    supported: VERSION
                }
            );
        }
    }

    #[test]
    fn rejects_any_flipped_bit_by_checksum() {
        let bytes = valid().encode();
        for bit in (VERSION_OFFSET + 4) * 8..IMMUTABLE_HEADER_LEN * 8 {
            let mut copy = bytes;
            copy[bit / 8] ^= 1 << (bit % 8);
            let err = Header::decode(&copy).unwrap_err();
            assert!(
                matches!(err, HeaderError::BadHeaderChecksum { .. }),
                "bit {bit}: {err}"
            );
        }
    }

    #[test]
    fn rejects_unknown_flags() {
        let err = tampered(|b| put_u32(b, FLAGS_OFFSET, 0x8000_0001)).unwrap_err();
        assert_eq!(err, HeaderError::UnknownFlags { flags: 0x8000_0000 });
        let err = tampered(|b| put_u32(b, FLAGS_OFFSET, 1 << 3)).unwrap_err();
        assert_eq!(err, HeaderError::UnknownFlags { flags: 1 << 3 });
    }

    #[test]
    fn rejects_nonzero_reserved_bytes() {
        for offset in (RESERVED_A_OFFSET..RESERVED_A_OFFSET + 4)
            .chain(RESERVED_B_OFFSET..HEADER_CHECKSUM_OFFSET)
        {
            let err = tampered(|b| b[offset] = 1).unwrap_err();
            assert_eq!(err, HeaderError::ReservedNotZero { offset });
        }
    }

    #[test]
    fn segment_fields_need_the_flag_and_an_aligned_base() {
        let err = tampered(|b| put_u64(b, JOURNAL_ID_OFFSET, 5)).unwrap_err();
        assert_eq!(
            err,
            HeaderError::SegmentFieldsWithoutFlag {
                journal_id: 5,
                base_position: 0
            }
        );
        let segment = ChannelConfig::new(1).segment(5, 8);
        assert!(segment.header_for(HEADER_LEN + 4096).is_ok());
        for base in [4, !7u64] {
            assert_eq!(
                ChannelConfig::new(1)
                    .segment(5, base)
                    .header_for(HEADER_LEN + 4096),
                Err(HeaderError::BasePositionOutOfRange {
                    base_position: base
                })
            );
        }
        let header = segment.header_for(HEADER_LEN + 4096).unwrap();
        assert_eq!(Header::decode(&header.encode()), Ok(header));
    }

    #[test]
    fn rejects_unknown_tick_units() {
        let err = tampered(|b| put_u32(b, TICK_UNIT_OFFSET, 4)).unwrap_err();
        assert_eq!(err, HeaderError::UnknownTickUnit { code: 4 });
    }

    #[test]
    fn rejects_bad_capacities() {
        for capacity in [0, 8, 15, 16, 4097, u32::MAX] {
            let err = tampered(|b| put_u32(b, CAPACITY_OFFSET, capacity)).unwrap_err();
            assert_eq!(
                err,
                HeaderError::CapacityOutOfRange {
                    capacity,
                    min: MIN_CAPACITY
                }
            );
        }
    }

    #[test]
    fn rejects_bad_max_record_lens() {
        for len in [0, 4096 - 15, u32::MAX] {
            let err = tampered(|b| put_u32(b, MAX_RECORD_LEN_OFFSET, len)).unwrap_err();
            assert_eq!(
                err,
                HeaderError::MaxRecordLenOutOfRange {
                    max_record_len: len,
                    limit: 4096 - 16
                }
            );
        }
    }

    #[test]
    fn rejects_capacity_beyond_region() {
        let header = valid();
        assert!(header.check_region(HEADER_LEN + 4096).is_ok());
        assert_eq!(
            header.check_region(HEADER_LEN + 4088),
            Err(HeaderError::CapacityExceedsRegion {
                capacity: 4096,
                available: 4088
            })
        );
        assert!(header.check_region(0).is_err());
    }

    #[test]
    fn the_smallest_channel_holds_a_record() {
        let header = ChannelConfig::new(1).header_for(HEADER_LEN + 24).unwrap();
        assert_eq!((header.capacity_bytes, header.max_record_len), (24, 8));
        // Too small a capacity says so, rather than blaming the record length.
        assert_eq!(
            ChannelConfig::new(1).capacity_bytes(16).header_for(4096),
            Err(HeaderError::CapacityOutOfRange {
                capacity: 16,
                min: 24
            })
        );
    }

    #[test]
    fn config_rejects_impossible_channels() {
        assert!(ChannelConfig::new(1).header_for(HEADER_LEN + 8).is_err());
        assert!(
            ChannelConfig::new(1)
                .max_record_len(0)
                .header_for(4096)
                .is_err()
        );
        assert!(
            ChannelConfig::new(1)
                .capacity_bytes(8192)
                .header_for(4096)
                .is_err()
        );
        assert!(
            ChannelConfig::new(1)
                .capacity_bytes(1001)
                .header_for(4096)
                .is_err()
        );
    }
}
