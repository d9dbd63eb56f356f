//! Loom models of batched publish (issue 12); `README.md` says what each
//! proves.
//!
//! A batch stages its records with `Relaxed` stores and publishes them all
//! with one `Release` store of its marker, after clearing the word past its
//! last record. The models run the real `Writer::batch` and `Reader` over a
//! `LoomRegion` whose words start as a phantom record commit word, while the
//! main thread polls. The reader must see none of a batch or all of it,
//! batches in order, and an empty word (or the end marker) after each,
//! never a stale one.
//!
//! Two negative controls, each built alone with its own `--cfg`, break one
//! rule of the batch publish in `kekbit-nostd/src/batch.rs`, and must fail:
//! `kekbit_weakened_batch_order` stores the records' commit words after the
//! marker, `kekbit_weakened_batch_clear` clears the word past the batch
//! after it. `.ci/loom.sh` runs each.
#![cfg(loom)]

use loom::thread;

#[cfg(not(any(
    kekbit_weakened,
    kekbit_weakened_batch_order,
    kekbit_weakened_batch_clear
)))]
use kekbit_nostd::WriteError;
use kekbit_nostd::{ChannelConfig, PlainHandler, ReadError, Reader};
use loom_tests::{Seen, channel, check, payload};

/// Model 11, and both batch controls' body: two batches, each of two
/// records written in different ways, published once by `publish` and once
/// by drop, then the channel is closed. The reader polls while they are
/// written.
fn two_batches_model() {
    // The first record is not 8 bytes long: a phantom record (the garbage
    // fill's commit word says 8) cannot pass for it.
    let expected = vec![payload(0, 3), payload(1, 9), payload(2, 12), payload(3, 5)];
    let (mut writer, region) = channel(128, &ChannelConfig::new(11));
    let records = expected.clone();
    let writer = thread::spawn(move || {
        let mut batch = writer.batch();
        batch.write(&records[0]).expect("fits");
        batch
            .write_with(&mut PlainHandler, &records[1][..])
            .expect("fits");
        assert_eq!(batch.publish(), 2);

        let mut batch = writer.batch();
        let mut grant = batch.reserve(16).expect("fits");
        grant[..12].copy_from_slice(&records[2]);
        grant.commit(12).expect("within the reservation");
        batch.write(&records[3]).expect("fits");
        drop(batch); // published
        writer.close();
    });

    let mut reader = Reader::open(&*region).expect("the header was published before the spawn");
    let mut seen = Seen::default();
    // One poll per batch and one for the end marker; nothing new may be
    // found only before the first batch, between them, or after both.
    seen.poll_batches(&mut reader, 3, &[0, 2, 4]);
    writer.join().expect("writer thread");
    seen.finish(&mut reader);
    assert_eq!(
        seen,
        Seen::of(&expected, Some(ReadError::Closed)),
        "the reader returned bytes that were not written"
    );
}

/// Model 11, batches whole and in order: the reader sees none of a batch
/// or all of it, a later batch never before an earlier one, and after each
/// batch an empty word or the close marker, never a phantom record.
#[test]
#[cfg(not(any(
    kekbit_weakened,
    kekbit_weakened_batch_order,
    kekbit_weakened_batch_clear
)))]
fn batches_are_seen_whole_and_in_order() {
    check(two_batches_model);
}

/// Model 12, a batch that fills the channel: the staged records that fit
/// are published, the channel is full right after them, and the writer
/// keeps the `Full` figures. With checksums on, every record of the batch
/// reads with a matching checksum: the checksum words are published by the
/// marker too.
#[test]
#[cfg(not(any(
    kekbit_weakened,
    kekbit_weakened_batch_order,
    kekbit_weakened_batch_clear
)))]
fn a_batch_that_does_not_fit_publishes_then_full() {
    check(|| {
        // 64-byte record area: marker 8, a 5-byte record (16), a 16-byte
        // one (24): 48 used; a second 16-byte one would end at 72 + 8.
        let expected = vec![payload(0, 5), payload(1, 16)];
        let config = ChannelConfig::new(12).checksums(true);
        let (mut writer, region) = channel(64, &config);
        let records = expected.clone();
        let writer = thread::spawn(move || {
            let full = WriteError::Full {
                needed: 24,
                remaining: 8,
            };
            let mut batch = writer.batch();
            batch.write(&records[0]).expect("fits");
            batch.write(&records[1]).expect("fits");
            assert_eq!(batch.write(&records[1]), Err(full));
            // The details stay reachable, through the batch and after it.
            assert_eq!(batch.write(b""), Err(full));
            assert_eq!(batch.publish(), 2);
            assert_eq!(writer.write(b""), Err(full));
        });

        let mut reader = Reader::open(&*region).expect("header published");
        let mut seen = Seen::default();
        seen.poll_batches(&mut reader, 2, &[0]);
        writer.join().expect("writer thread");
        seen.finish(&mut reader);
        assert_eq!(seen, Seen::of(&expected, Some(ReadError::Full)));
        assert_eq!(reader.try_read(), Err(ReadError::Full));
    });
}

/// Runs `model`, which must fail for a reason that shows the reader saw
/// what a batch's single publish should have hidden: a causality violation
/// on bytes the reader borrows, a record that was not written (a phantom,
/// or a stale commit word), damage reported where there is none, or
/// nothing found inside a batch. Any other panic, or none, fails the test.
#[cfg(any(kekbit_weakened_batch_order, kekbit_weakened_batch_clear))]
fn must_fail_for_the_right_reason(model: fn()) {
    let Err(panic) = std::panic::catch_unwind(|| check(model)) else {
        return; // the model passed: `should_panic` fails the test
    };
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    let reasons = [
        "the reader returned bytes that were not written",
        "the reader reported",
        "inside a batch",
    ];
    let race_in_reader = message
        .contains("Causality violation: Concurrent read and write accesses.")
        && message.contains("src/reader.rs");
    if race_in_reader || reasons.iter().any(|reason| message.contains(reason)) {
        panic!("negative control failed as expected: {message}");
    }
    std::panic::resume_unwind(panic);
}

/// Model 13, negative control: model 11 over a batch that stores its
/// records' commit words after the marker (built only with
/// `--cfg kekbit_weakened_batch_order`) must fail: a reader that sees the
/// marker may still load a record's old commit word.
#[test]
#[cfg(kekbit_weakened_batch_order)]
#[should_panic(expected = "negative control failed as expected")]
fn negative_control_marker_before_records_is_caught() {
    must_fail_for_the_right_reason(two_batches_model);
}

/// Model 14, negative control: model 11 over a batch that clears the word
/// past its last record after the marker (built only with
/// `--cfg kekbit_weakened_batch_clear`) must fail: a reader past the batch
/// may load the stale word there, a phantom record.
#[test]
#[cfg(kekbit_weakened_batch_clear)]
#[should_panic(expected = "negative control failed as expected")]
fn negative_control_end_cleared_after_publish_is_caught() {
    must_fail_for_the_right_reason(two_batches_model);
}
