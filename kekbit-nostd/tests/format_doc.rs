//! Keeps `docs/FORMAT.md` and `kekbit_nostd::format` in agreement: every
//! field the document lists has the code's offset and size, every field the
//! code defines is documented, and the commit-word values and signature match.

use kekbit_nostd::format::*;

fn document() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md");
    std::fs::read_to_string(path).expect("docs/FORMAT.md is readable")
}

/// Rows `| 0x.. | size | name | ... |` of the document's field tables.
fn field_rows(doc: &str) -> Vec<(usize, String, String)> {
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let offset = cells.get(1)?.strip_prefix("0x")?;
            let offset = usize::from_str_radix(offset, 16).ok()?;
            Some((offset, cells.get(2)?.to_string(), cells.get(3)?.to_string()))
        })
        .collect()
}

#[test]
#[cfg_attr(miri, ignore)] // reads a file
fn header_and_record_tables_match_the_constants() {
    let doc = document();
    let rows = field_rows(&doc);
    let expected: &[(&str, usize, &str)] = &[
        ("signature", SIGNATURE_OFFSET, "8"),
        ("version", VERSION_OFFSET, "4"),
        ("flags", FLAGS_OFFSET, "4"),
        ("writer_id", WRITER_ID_OFFSET, "8"),
        ("channel_id", CHANNEL_ID_OFFSET, "8"),
        ("capacity", CAPACITY_OFFSET, "4"),
        ("max_record_len", MAX_RECORD_LEN_OFFSET, "4"),
        ("timeout", TIMEOUT_OFFSET, "8"),
        ("creation_time", CREATION_TIME_OFFSET, "8"),
        ("tick_unit", TICK_UNIT_OFFSET, "4"),
        ("reserved_a", RESERVED_A_OFFSET, "4"),
        ("journal_id", JOURNAL_ID_OFFSET, "8"),
        ("base_position", BASE_POSITION_OFFSET, "8"),
        (
            "reserved_b",
            RESERVED_B_OFFSET,
            &(HEADER_CHECKSUM_OFFSET - RESERVED_B_OFFSET).to_string(),
        ),
        ("header_checksum", HEADER_CHECKSUM_OFFSET, "4"),
        ("heartbeat_seq", HEARTBEAT_SEQ_OFFSET, "4"),
        ("heartbeat_lo", HEARTBEAT_LO_OFFSET, "4"),
        ("heartbeat_hi", HEARTBEAT_HI_OFFSET, "4"),
        (
            "reserved",
            WRITER_RESERVED_OFFSET,
            &(HEADER_LEN - WRITER_RESERVED_OFFSET).to_string(),
        ),
        ("commit", COMMIT_WORD_OFFSET, "4"),
        ("checksum", RECORD_CHECKSUM_OFFSET, "4"),
        ("payload", PAYLOAD_OFFSET, "len"),
    ];
    for (name, offset, size) in expected {
        let row = rows.iter().find(|(_, _, n)| n == name);
        let Some((doc_offset, doc_size, _)) = row else {
            panic!("docs/FORMAT.md has no row for `{name}`");
        };
        assert_eq!(doc_offset, offset, "offset of `{name}`");
        assert_eq!(doc_size, size, "size of `{name}`");
    }
    // Every header and record row is one the code knows.
    for (_, _, name) in &rows {
        assert!(
            expected.iter().any(|(n, _, _)| n == name),
            "docs/FORMAT.md documents `{name}`, which the code does not define"
        );
    }
    // The reserved tail of the writer-owned line runs to the record area.
    let reserved = rows
        .iter()
        .find(|(_, _, n)| n == "reserved")
        .expect("reserved row");
    let end = reserved.0 + reserved.1.parse::<usize>().expect("numeric size");
    assert_eq!(
        end, HEADER_LEN,
        "the header ends where the record area starts"
    );
    assert!(doc.contains(&format!("starts at offset 0x{HEADER_LEN:X}")));
    // Each documented header field ends where the next begins.
    let mut next = 0;
    for (offset, size, name) in rows.iter().take_while(|r| r.2 != "commit") {
        assert_eq!(*offset, next, "`{name}` does not follow the previous field");
        next = offset + size.parse::<usize>().expect("numeric size");
    }
    assert_eq!(next, HEADER_LEN);
}

#[test]
#[cfg_attr(miri, ignore)] // reads a file
fn commit_words_and_signature_match() {
    let doc = document();
    assert!(doc.contains("| `0x00000000` |"), "empty commit word");
    assert!(
        doc.contains(&format!("| `0x{COMMIT_RECORD_TAG:08X}` \\| len |")),
        "record tag"
    );
    assert!(
        doc.contains(&format!("| `0x{COMMIT_BATCH_TAG:08X}` \\| span |")),
        "batch tag"
    );
    assert!(doc.contains(&format!(
        "at most 2^30 - {}",
        COMMIT_LEN_MASK + 1 - MAX_BATCH_SPAN
    )));
    assert!(
        doc.contains(&format!("| `0x{COMMIT_CLOSED:08X}` | closed")),
        "closed marker"
    );
    assert!(
        doc.contains(&format!("| `0x{COMMIT_FULL:08X}` | full")),
        "full marker"
    );
    let hex: Vec<String> = SIGNATURE.iter().map(|b| format!("{b:02X}")).collect();
    assert!(
        doc.contains(&format!("`{}`", hex.join(" "))),
        "signature bytes"
    );
    assert!(doc.contains(&format!("# The kekbit channel format, version {VERSION}")));
    assert!(doc.contains(&format!("this document describes `{VERSION}`")));
    assert!(doc.contains("len < 2^30") && MAX_RECORD_LEN_LIMIT == (1 << 30) - 1);
    assert!(doc.contains(&format!("at least {MIN_CAPACITY}")));
    for (bit, flag) in [(0, FLAG_CHECKSUMS), (1, FLAG_EPOCH_TIME), (2, FLAG_SEGMENT)] {
        assert_eq!(flag, 1 << bit);
        assert!(doc.contains(&format!("**bit {bit}, ")), "flag bit {bit}");
    }
    assert_eq!(KNOWN_FLAGS, 0b111);
}
