//! `kill -9` the writer mid-stream, at random points, many times: every
//! reader sees an exact prefix of what was written (each record is checked
//! byte for byte against the stream), then reports the writer abandoned
//! within the channel's timeout.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kekbit_std::ShmReader;
use kekbit_tests::{SplitMix, record, scratch_dir};

const ROUNDS: u64 = 12;
const READERS: usize = 2;
const TIMEOUT_MS: u64 = 250;
/// Extra time allowed for process scheduling on a loaded two-core machine.
const SLACK: Duration = Duration::from_secs(4);
/// Room for several seconds of the paced stream (about 2 s per 64 MiB on an
/// idle machine), so that a test thread stalled by load still kills the
/// writer mid-stream rather than finding the channel full. One round's file
/// exists at a time.
const CAPACITY: u64 = 256 << 20;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kekbit-helper"))
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// How many records the file holds, checking each against the stream.
fn committed_prefix(path: &std::path::Path, seed: u64) -> u64 {
    let channel = ShmReader::open(path).expect("open the abandoned channel");
    let mut reader = channel.reader().unwrap();
    let mut expected = Vec::new();
    let mut count = 0;
    while let Some(got) = reader.try_read().expect("no damage after a kill") {
        record(seed, count, &mut expected);
        assert_eq!(got, expected.as_slice(), "record {count} of the file");
        count += 1;
    }
    count
}

#[test]
#[cfg_attr(miri, ignore)]
fn readers_see_an_exact_prefix_then_abandonment() {
    let dir = scratch_dir("writer-killed");
    let start_seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("random seed {start_seed}");
    let mut rng = SplitMix::new(start_seed);
    for round in 0..ROUNDS {
        let seed = rng.next_u64();
        let kill_after = Duration::from_millis(20 + rng.next_u64() % 400);
        let path = dir.join(format!("round-{round}.kekbit"));
        let path_arg = path.to_str().unwrap();
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                helper()
                    .args(["read", path_arg, &seed.to_string(), "30000"])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn a reader")
            })
            .collect();
        // An endless stream, paced (1 ms pause every 512 records) so that
        // rounds last long enough; most kills land mid-burst, some in a pause.
        let mut writer = helper()
            .args([
                "write",
                path_arg,
                &u64::MAX.to_string(),
                &seed.to_string(),
                &CAPACITY.to_string(),
                &TIMEOUT_MS.to_string(),
                "512",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn the writer");
        // Wait until the stream has begun, then let it run a while.
        let channel = ShmReader::open_timeout(&path, Duration::from_secs(30))
            .expect("the writer creates the channel");
        let mut first = channel.reader().unwrap();
        assert!(
            first
                .read_timeout(Duration::from_secs(30))
                .unwrap()
                .is_some(),
            "the writer wrote nothing"
        );
        drop(channel);
        std::thread::sleep(kill_after);
        assert!(
            writer.try_wait().unwrap().is_none(),
            "round {round}: the writer ended before its kill (channel full?)"
        );
        writer.kill().expect("SIGKILL the writer");
        let killed = Instant::now();
        let status = writer.wait().unwrap();
        assert!(!status.success(), "the writer should have died: {status:?}");

        let on_file = committed_prefix(&path, seed);
        for reader in readers {
            let out = reader.wait_with_output().expect("wait for a reader");
            let detected = killed.elapsed();
            let line = String::from_utf8(out.stdout).unwrap();
            assert!(
                out.status.success(),
                "round {round}: reader failed: {line} {:?}",
                out.status
            );
            assert_eq!(field(&line, "end"), "abandoned", "round {round}: {line}");
            assert_eq!(
                field(&line, "records"),
                on_file.to_string(),
                "round {round}: the reader must see every committed record"
            );
            assert!(
                detected <= Duration::from_millis(TIMEOUT_MS) + SLACK,
                "round {round}: abandonment took {detected:?}"
            );
            println!(
                "round {round}: killed after {kill_after:?}, {on_file} records, reader done {detected:?} after the kill"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
