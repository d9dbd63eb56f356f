//! Push a journal to a real nats-server and pull it into a replica.

use std::path::Path;

use kekbit_relay::message::{FRAME_HEADER, HEADER_LEN, Message};
use kekbit_relay::{HEADER_ALLOWANCE, Pull, PullOptions, Push, PushOptions, RelayError};
use kekbit_std::journal::{JournalOptions, JournalReader, SegmentState, Start, segments};
use nats_fixture::{NatsServer, ServerOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Deterministic mixed sizes: mostly small, some up to `max`.
fn record(i: u64, max: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    let len = match x % 16 {
        0 => (x >> 8) as usize % (max + 1),
        1 => 0,
        _ => (x >> 8) as usize % 100,
    };
    (0..len).map(|k| (i as usize + k) as u8).collect()
}

fn all_records(dir: &Path) -> Vec<(u64, u64, Vec<u8>)> {
    let mut reader = JournalReader::open_at(dir, Start::Beginning).unwrap();
    let mut out = Vec::new();
    loop {
        match reader.try_read() {
            Ok(Some(r)) => {
                let (p, v) = (r.position, r.payload.to_vec());
                out.push((p, reader.segment_base(), v));
            }
            Ok(None) => break,
            Err(e) if e.is_end() => break,
            Err(e) => panic!("{e}"),
        }
    }
    out
}

#[test]
fn push_then_pull_keeps_every_position_and_segment() {
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let replica = tmp.path().join("replica");
    let mut writer = JournalOptions::new()
        .segment_bytes(64 << 10)
        .max_record_len(4096)
        .open_writer(&source)
        .unwrap();
    for i in 0..20_000u64 {
        if i % 1000 == 500 {
            let batch: Vec<Vec<u8>> = (0..5).map(|k| record(i * 10 + k, 4096)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            writer.append_all(&refs).unwrap();
        } else {
            writer.append(&record(i, 4096)).unwrap();
        }
        if i == 7000 {
            writer.roll().unwrap();
        }
    }
    writer.close().unwrap();

    let rt = runtime();
    let push = rt
        .block_on(
            Push::new(
                PushOptions::new(server.url(), "RT", &source)
                    .until_closed(true)
                    .max_message_bytes(16 << 10),
            )
            .run(),
        )
        .unwrap();
    assert_eq!(push.records, 20_000 - 20 + 100);
    let pull = rt
        .block_on(
            Pull::new(PullOptions::new(server.url(), "RT", &replica).until_closed(true)).run(),
        )
        .unwrap();
    assert_eq!(pull.records, push.records);
    assert!(pull.closed);
    let (a, b) = (all_records(&source), all_records(&replica));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "position, segment base and bytes");
    }

    // Running both again does nothing: the stream and the replica are complete.
    let push2 = rt
        .block_on(Push::new(PushOptions::new(server.url(), "RT", &source).until_closed(true)).run())
        .unwrap();
    assert_eq!(push2.records, 0);
    let pull2 = rt
        .block_on(
            Pull::new(PullOptions::new(server.url(), "RT", &replica).until_closed(true)).run(),
        )
        .unwrap();
    assert_eq!(pull2.records, 0);
    assert_eq!(all_records(&replica).len(), b.len());
}

/// The volume test: a million records of mixed sizes (0 to 4 KiB,
/// batches, several segments) pushed and pulled at once; the replica
/// matches the source record for record, position for position.
#[test]
fn a_million_records_of_mixed_sizes() {
    const N: u64 = 1_000_000;
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let replica = tmp.path().join("replica");
    let mut writer = JournalOptions::new()
        .segment_bytes(16 << 20)
        .max_record_len(4096)
        .open_writer(&source)
        .unwrap();
    let mut i = 0;
    while i < N {
        if i.is_multiple_of(1009) && i + 3 <= N {
            let batch: Vec<Vec<u8>> = (i..i + 3).map(|k| record(k, 4096)).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            writer.append_all(&refs).unwrap();
            i += 3;
        } else {
            writer.append(&record(i, 4096)).unwrap();
            i += 1;
        }
    }
    writer.close().unwrap();

    let rt = runtime();
    let url = server.url();
    let (push, pull) = rt.block_on(async {
        let push = tokio::spawn(
            Push::new(PushOptions::new(&url, "MILLION", &source).until_closed(true)).run(),
        );
        let pull = tokio::spawn(
            Pull::new(PullOptions::new(&url, "MILLION", &replica).until_closed(true)).run(),
        );
        (push.await.unwrap().unwrap(), pull.await.unwrap().unwrap())
    });
    assert_eq!(push.records, N);
    assert_eq!(pull.records, N);
    let (a, b) = (all_records(&source), all_records(&replica));
    assert_eq!(a.len() as u64, N);
    assert!(a == b, "the replica differs from the source");
    assert!(
        a.last().unwrap().1 > 0,
        "the journal spans several segments"
    );
}

/// `StartAt::Position` seeds an empty stream at a record boundary; on a
/// stream that holds records it must name where the stream resumes; a new
/// replica starts where the stream does; a position that is not a record
/// boundary is the journal's typed error.
#[test]
fn start_positions() {
    use kekbit_relay::StartAt;
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let mut writer = JournalOptions::new()
        .segment_bytes(64 << 10)
        .max_record_len(1024)
        .open_writer(&source)
        .unwrap();
    let positions: Vec<u64> = (0..10u8)
        .map(|i| writer.append(&[i; 10]).unwrap())
        .collect();
    writer.close().unwrap();
    let rt = runtime();
    let push = |start| {
        rt.block_on(
            Push::new(
                PushOptions::new(server.url(), "FROM", &source)
                    .until_closed(true)
                    .start(start),
            )
            .run(),
        )
    };
    match push(StartAt::Position(positions[3] + 8)) {
        Err(RelayError::Journal(e)) => assert!(
            e.to_string().contains(&(positions[3] + 8).to_string()),
            "{e}"
        ),
        other => panic!("not a record boundary: {other:?}"),
    }
    let stats = push(StartAt::Position(positions[4])).unwrap();
    assert_eq!((stats.start_position, stats.records), (positions[4], 6));
    match push(StartAt::Position(positions[2])) {
        Err(RelayError::StartConflict {
            requested, resume, ..
        }) => {
            assert_eq!((requested, resume), (positions[2], stats.end_position));
        }
        other => panic!("a conflicting start: {other:?}"),
    }
    // Resuming where the stream ends is fine, and publishes nothing.
    assert_eq!(
        push(StartAt::Position(stats.end_position)).unwrap().records,
        0
    );
    // A new replica starts where the stream does: same positions.
    let replica = tmp.path().join("replica");
    let pulled = rt
        .block_on(
            Pull::new(PullOptions::new(server.url(), "FROM", &replica).until_closed(true)).run(),
        )
        .unwrap();
    assert_eq!((pulled.records, pulled.closed), (6, true));
    // Same positions and bytes; the replica's first segment starts at the
    // stream's first record, inside the source's first segment.
    let copied: Vec<_> = all_records(&replica)
        .into_iter()
        .map(|(p, _, r)| (p, r))
        .collect();
    let expected: Vec<_> = all_records(&source)
        .into_iter()
        .skip(4)
        .map(|(p, _, r)| (p, r))
        .collect();
    assert_eq!(copied, expected);
    assert_eq!(segment_bases(&replica), [positions[4]]);
    assert!(matches!(
        JournalReader::open_at(&replica, Start::Position(positions[3])),
        Err(kekbit_std::journal::JournalError::BehindRetention { first_available, .. })
            if first_available == positions[4]
    ));
}

/// The bases of a journal's segments.
fn segment_bases(dir: &Path) -> Vec<u64> {
    segments(dir).unwrap().iter().map(|s| s.base).collect()
}

fn segment_list(dir: &Path) -> Vec<(u64, u64, SegmentState)> {
    segments(dir)
        .unwrap()
        .into_iter()
        .map(|s| (s.base, s.end, s.state))
        .collect()
}

/// A source whose retention dropped its first segments: the replica starts
/// at the source's first retained position, with the same segments.
#[test]
fn a_source_that_starts_past_zero_is_replicated_at_its_positions() {
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let replica = tmp.path().join("replica");
    let mut writer = JournalOptions::new()
        .segment_bytes(16 << 10)
        .max_record_len(1024)
        .open_writer(&source)
        .unwrap();
    for i in 0..3000u64 {
        writer.append(&record(i, 1024)).unwrap();
    }
    let bases = segment_bases(&source);
    assert!(bases.len() > 4);
    writer.truncate_before(bases[3]).unwrap();
    writer.close().unwrap();
    assert_eq!(segment_bases(&source)[0], bases[3]);

    let rt = runtime();
    rt.block_on(
        Push::new(PushOptions::new(server.url(), "LATE", &source).until_closed(true)).run(),
    )
    .unwrap();
    let pulled = rt
        .block_on(
            Pull::new(PullOptions::new(server.url(), "LATE", &replica).until_closed(true)).run(),
        )
        .unwrap();
    assert!(pulled.closed);
    assert_eq!(all_records(&replica), all_records(&source));
    assert_eq!(segment_list(&replica), segment_list(&source));
}

/// A puller stopped cleanly and started again, several times, mid-segment:
/// the replica resumes its open segment each time, so its segments end up
/// exactly the source's (before `leave_open`, each stop sealed the replica
/// and the restart began a segment of its own).
#[test]
fn a_puller_stopped_and_restarted_keeps_the_sources_segment_boundaries() {
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let replica = tmp.path().join("replica");
    let mut writer = JournalOptions::new()
        .segment_bytes(64 << 10)
        .max_record_len(4096)
        .open_writer(&source)
        .unwrap();
    for i in 0..20_000u64 {
        writer.append(&record(i, 4096)).unwrap();
    }
    let end = writer.end_position();
    writer.close().unwrap();
    let source_bases = segment_bases(&source);
    assert!(source_bases.len() > 8);

    let rt = runtime();
    rt.block_on(
        Push::new(
            PushOptions::new(server.url(), "STOPS", &source)
                .until_closed(true)
                .max_message_bytes(8 << 10),
        )
        .run(),
    )
    .unwrap();
    let mut stopped_at = Vec::new();
    for k in 1..=6u64 {
        let pull = Pull::new(PullOptions::new(server.url(), "STOPS", &replica));
        let progress = pull.progress();
        let target = end * k / 7;
        let stats = rt
            .block_on(pull.run_until(async move {
                while progress.snapshot().position < target {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }))
            .unwrap();
        assert!(!stats.closed);
        stopped_at.push(stats.end_position);
        // Every boundary so far is one of the source's, and the last
        // segment is left open, not sealed.
        let now = segment_list(&replica);
        assert!(
            now.iter().all(|(base, ..)| source_bases.contains(base)),
            "stop {k} at {}: {now:?}",
            stats.end_position
        );
        assert_eq!(now.last().unwrap().2, SegmentState::Open);
    }
    assert!(
        stopped_at.iter().any(|p| !source_bases.contains(p)),
        "some stops fell inside a segment: {stopped_at:?}"
    );
    let last = rt
        .block_on(
            Pull::new(PullOptions::new(server.url(), "STOPS", &replica).until_closed(true)).run(),
        )
        .unwrap();
    assert!(last.closed);
    assert_eq!(segment_list(&replica), segment_list(&source));
    assert!(all_records(&replica) == all_records(&source));
}

/// The stream's last message: (its sequence, its first position, its end).
fn stream_tail(server: &NatsServer, stream: &str) -> (u64, u64, u64) {
    let rt = runtime();
    rt.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut s = js.get_stream(stream).await.unwrap();
        let last = s.info().await.unwrap().state.last_sequence;
        let raw = s.get_raw_message(last).await.unwrap();
        let m = Message::parse(&raw.payload).unwrap();
        (last, m.header().first_position, m.end_position())
    })
}

/// A journal made with default options (records up to 64 MiB) relays
/// whatever it holds that fits a message, up to the longest record a
/// message carries (behind a batch marker, too); a record one byte longer
/// stops the push with both numbers, after every record before it is in
/// the stream and with nothing of it published; raising `max_payload` lets
/// the next push resume at that record.
#[test]
fn a_default_journal_relays_until_a_record_too_large_for_the_server() {
    const MAX_PAYLOAD: usize = 64 << 10;
    // What a message of MAX_PAYLOAD carries: its header, a batch marker
    // and one record's frame.
    let largest = (MAX_PAYLOAD - HEADER_ALLOWANCE - HEADER_LEN - 8 - FRAME_HEADER) / 8 * 8;
    let mut server = NatsServer::start_with(ServerOptions {
        max_payload: Some(u32::try_from(MAX_PAYLOAD).unwrap()),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let replica = tmp.path().join("replica");
    let mut writer = JournalOptions::new().open_writer(&source).unwrap();
    for i in 0..250u64 {
        writer.append(&record(i, 4096)).unwrap();
    }
    // Exactly the longest, alone and behind a batch marker.
    writer.append(&vec![5; largest]).unwrap();
    writer.append_all(&[&vec![6; largest][..]]).unwrap();
    for i in 250..500u64 {
        writer.append(&record(i, 4096)).unwrap();
    }
    let big = writer.append(&vec![7; largest + 1]).unwrap();
    for i in 500..600u64 {
        writer.append(&record(i, 4096)).unwrap();
    }
    writer.close().unwrap();

    let rt = runtime();
    let url = server.url(); // the same after a restart
    let push = || {
        rt.block_on(
            Push::new(
                PushOptions::new(&url, "BIG", &source)
                    .until_closed(true)
                    .max_message_bytes(16 << 10),
            )
            .run(),
        )
    };
    let mut first_sequence = None;
    for attempt in 0..2 {
        match push() {
            Err(RelayError::RecordTooLarge {
                position,
                len,
                max_payload,
                largest_record,
                ..
            }) => {
                assert_eq!(
                    (position, len, max_payload, largest_record),
                    (big, largest + 1, MAX_PAYLOAD, largest)
                );
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
        let err = push().unwrap_err().to_string();
        assert!(
            err.contains(&format!("{} bytes", largest + 1)) && err.contains("65536"),
            "{err}"
        );
        // The stream ends right before the record, and the second attempt
        // published nothing again.
        let (sequence, _, stream_end) = stream_tail(&server, "BIG");
        assert_eq!(stream_end, big);
        assert_eq!(*first_sequence.get_or_insert(sequence), sequence);
    }
    server.restart_with(ServerOptions {
        max_payload: Some(1 << 20),
        ..Default::default()
    });
    let stats = push().unwrap();
    assert_eq!((stats.start_position, stats.records), (big, 101));
    let pulled = rt
        .block_on(
            Pull::new(PullOptions::new(server.url(), "BIG", &replica).until_closed(true)).run(),
        )
        .unwrap();
    assert_eq!(pulled.records, 603);
    assert_eq!(all_records(&replica), all_records(&source));
    assert_eq!(segment_list(&replica), segment_list(&source));
}
