//! Micro-benchmarks of kekbit-nostd's write and read paths, one thread, in
//! pre-faulted memory: the cost of the protocol itself, without page faults
//! and without a second core.
//!
//! ```text
//! cargo bench -p kekbit-benches --bench core
//! ```

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use kekbit_nostd::format::{PAYLOAD_OFFSET, RECORD_ALIGN};
use kekbit_nostd::{ChannelConfig, Reader, SliceRegion, Writer};
use memmap2::MmapMut;

fn main() {
    divan::main();
}

const SIZES: [usize; 4] = [8, 64, 1024, 65536];
/// Region size: 16 MiB, pre-faulted.
const REGION: usize = 16 << 20;

/// Records of `len` bytes one batch writes: as many as fit, at most 4096.
fn batch(len: usize) -> usize {
    let span = PAYLOAD_OFFSET + len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN;
    ((REGION - 4096) / span).min(4096)
}

fn memory() -> MmapMut {
    let mut map = MmapMut::map_anon(REGION).expect("anonymous mapping");
    for page in map.chunks_mut(4096) {
        page[0] = 0;
    }
    map
}

fn config(len: usize, checksums: bool) -> ChannelConfig {
    ChannelConfig::new(1)
        .max_record_len(len as u32)
        .checksums(checksums)
}

fn write_batch(bencher: Bencher, len: usize, checksums: bool) {
    let mut map = memory();
    let n = batch(len);
    let payload = vec![0x5Au8; len];
    bencher
        .counter(ItemsCount::new(n))
        .counter(BytesCount::new(n * len))
        .bench_local(|| {
            let mut region = SliceRegion::new(&mut map[..]).expect("aligned mapping");
            let mut writer =
                Writer::create(&mut region, &config(len, checksums)).expect("valid config");
            for _ in 0..n {
                writer.write(black_box(&payload)).expect("record fits");
            }
            writer.leave_open();
        });
}

fn read_batch(bencher: Bencher, len: usize, checksums: bool) {
    let mut map = memory();
    let n = batch(len);
    let mut region = SliceRegion::new(&mut map[..]).expect("aligned mapping");
    let mut writer = Writer::create(&mut region, &config(len, checksums)).expect("valid config");
    let payload = vec![0x5Au8; len];
    for _ in 0..n {
        writer.write(&payload).expect("record fits");
    }
    let shared = writer.shared_region();
    bencher
        .counter(ItemsCount::new(n))
        .counter(BytesCount::new(n * len))
        .bench_local(|| {
            let mut reader = Reader::open(shared).expect("valid header");
            let mut count = 0;
            while let Ok(Some(record)) = reader.try_read() {
                black_box(record);
                count += 1;
            }
            assert_eq!(count, n);
        });
}

/// `Writer::write` of a batch of records of each size.
#[divan::bench(args = SIZES)]
fn write(bencher: Bencher, len: usize) {
    write_batch(bencher, len, false);
}

/// `Writer::write` with per-record CRC32C.
#[divan::bench(args = SIZES)]
fn write_checksummed(bencher: Bencher, len: usize) {
    write_batch(bencher, len, true);
}

/// `Writer::reserve` + fill in place + `Grant::commit`: the zero-copy path.
#[divan::bench(args = SIZES)]
fn reserve_commit(bencher: Bencher, len: usize) {
    let mut map = memory();
    let n = batch(len);
    let payload = vec![0x5Au8; len];
    bencher
        .counter(ItemsCount::new(n))
        .counter(BytesCount::new(n * len))
        .bench_local(|| {
            let mut region = SliceRegion::new(&mut map[..]).expect("aligned mapping");
            let mut writer =
                Writer::create(&mut region, &config(len, false)).expect("valid config");
            for _ in 0..n {
                let mut grant = writer.reserve(len).expect("record fits");
                grant.copy_from_slice(black_box(&payload));
                grant.commit(len).expect("within the grant");
            }
            writer.leave_open();
        });
}

/// `Reader::try_read` over a batch of committed records.
#[divan::bench(args = SIZES)]
fn read(bencher: Bencher, len: usize) {
    read_batch(bencher, len, false);
}

/// `Reader::try_read` verifying each record's CRC32C.
#[divan::bench(args = SIZES)]
fn read_checksummed(bencher: Bencher, len: usize) {
    read_batch(bencher, len, true);
}
