//! `kekbit relay push|pull` as processes, against a real nats-server: the
//! pusher and the puller killed with SIGKILL at random points, the server
//! restarted mid-stream, and bad input.
#![cfg(feature = "relay")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kekbit_relay::message::Message;
use kekbit_std::journal::{JournalOptions, JournalReader, JournalWriter, Start};
use nats_fixture::{NatsServer, ServerOptions};

const KEKBIT: &str = env!("CARGO_BIN_EXE_kekbit");

/// A small xorshift generator; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn from_time(test: &str) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("{test}: seed {seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Record `i`'s bytes: mixed sizes, mostly small, some up to 3000 bytes.
fn record(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    let len = match x % 20 {
        0 => (x >> 16) as usize % 3000,
        1 => 0,
        _ => 8 + (x >> 16) as usize % 120,
    };
    let mut bytes: Vec<u8> = (0..len).map(|k| (x >> (k % 7)) as u8 ^ k as u8).collect();
    if len >= 8 {
        bytes[..8].copy_from_slice(&i.to_le_bytes());
    }
    bytes
}

fn open_source(dir: &Path) -> JournalWriter {
    JournalOptions::new()
        .segment_bytes(256 << 10)
        .max_record_len(4096)
        .open_writer(dir)
        .unwrap()
}

/// Appends records `from..to`, now and then as a batch, paced over `over`.
fn write_records(writer: &mut JournalWriter, from: u64, to: u64, over: Duration) {
    let start = Instant::now();
    let mut i = from;
    while i < to {
        if i.is_multiple_of(997) && i + 4 <= to {
            let batch: Vec<Vec<u8>> = (i..i + 4).map(record).collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            writer.append_all(&refs).unwrap();
            i += 4;
        } else {
            writer.append(&record(i)).unwrap();
            i += 1;
        }
        let due = over.mul_f64((i - from) as f64 / (to - from) as f64);
        if let Some(ahead) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// Every record of a journal: (position, segment base, bytes).
fn records_of(dir: &Path) -> Vec<(u64, u64, Vec<u8>)> {
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

fn assert_same_journal(source: &Path, replica: &Path) {
    let (a, b) = (records_of(source), records_of(replica));
    assert_eq!(a.len(), b.len(), "record counts");
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.0, y.0, "record {k}: position");
        assert_eq!(x.1, y.1, "record {k}: segment base");
        assert!(x.2 == y.2, "record {k}: bytes differ");
    }
}

/// Reads the whole stream back and checks that it holds every record of
/// `source` exactly once, in order: each message starts where the previous
/// one ended, and the records are the source's.
fn assert_stream_exact(server: &NatsServer, stream: &str, source: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let payloads: Vec<Vec<u8>> = rt.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut s = js.get_stream(stream).await.unwrap();
        let last = s.info().await.unwrap().state.last_sequence;
        let consumer = s
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut out = Vec::new();
        while (out.len() as u64) < last {
            let m = messages.next().await.unwrap().unwrap();
            out.push(m.payload.to_vec());
        }
        out
    });
    let expected = records_of(source);
    let mut next = 0;
    let mut position = 0;
    for (k, payload) in payloads.iter().enumerate() {
        let m = Message::parse(payload).unwrap();
        if m.header().is_closed_marker() {
            assert_eq!(
                m.header().first_position,
                position,
                "message {k}: end marker position"
            );
            continue;
        }
        assert_eq!(
            m.header().first_position,
            position,
            "message {k} starts where the last ended"
        );
        for frame in m.frames() {
            if let kekbit_relay::message::Frame::Record {
                position: p,
                payload,
            } = frame
            {
                let (ep, _, eb) = &expected[next];
                assert_eq!((p, payload), (*ep, &eb[..]), "record {next}");
                next += 1;
            }
        }
        position = m.end_position();
    }
    assert_eq!(next, expected.len(), "every record is in the stream once");
}

fn push_cmd(server: &str, stream: &str, journal: &Path) -> Command {
    let mut c = Command::new(KEKBIT);
    c.args(["relay", "push"])
        .arg(journal)
        .args([
            "--server",
            server,
            "--stream",
            stream,
            "--until-closed",
            "--json",
            "--max-message",
            "4KiB",
        ])
        .stdin(Stdio::null());
    c
}

fn pull_cmd(server: &str, stream: &str, journal: &Path) -> Command {
    let mut c = Command::new(KEKBIT);
    c.args([
        "relay",
        "pull",
        "--server",
        server,
        "--stream",
        stream,
        "--until-closed",
        "--json",
    ])
    .arg(journal)
    .stdin(Stdio::null());
    c
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn kill9(mut child: Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

fn paths(tmp: &tempfile::TempDir) -> (PathBuf, PathBuf) {
    (tmp.path().join("source"), tmp.path().join("replica"))
}

#[test]
fn the_pusher_killed_ten_times_leaves_every_record_once_in_order() {
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (source, replica) = paths(&tmp);
    let mut rng = Rng::from_time("pusher killed");
    let mut writer = open_source(&source);
    let writing = std::thread::spawn(move || {
        write_records(&mut writer, 0, 60_000, Duration::from_secs(4));
        writer.close().unwrap();
    });
    for _ in 0..10 {
        let child = spawn(push_cmd(&server.url(), "KILLED", &source));
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        kill9(child);
    }
    writing.join().unwrap();
    wait_ok(
        spawn(push_cmd(&server.url(), "KILLED", &source)),
        "the last push",
    );
    assert_stream_exact(&server, "KILLED", &source);
    wait_ok(spawn(pull_cmd(&server.url(), "KILLED", &replica)), "pull");
    assert_same_journal(&source, &replica);
}

#[test]
fn the_puller_killed_at_random_points_leaves_an_identical_replica() {
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (source, replica) = paths(&tmp);
    let mut rng = Rng::from_time("puller killed");
    let mut writer = open_source(&source);
    let writing = std::thread::spawn(move || {
        write_records(&mut writer, 0, 60_000, Duration::from_secs(4));
        writer.close().unwrap();
    });
    let pusher = spawn(push_cmd(&server.url(), "PULLED", &source));
    for _ in 0..10 {
        let child = spawn(pull_cmd(&server.url(), "PULLED", &replica));
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        kill9(child);
    }
    writing.join().unwrap();
    wait_ok(pusher, "push");
    let out = wait_ok(
        spawn(pull_cmd(&server.url(), "PULLED", &replica)),
        "the last pull",
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["closed"], true, "{stats}");
    assert_same_journal(&source, &replica);
}

#[test]
fn a_server_restart_mid_stream_loses_and_duplicates_nothing() {
    let mut server = NatsServer::start_with(ServerOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let (source, replica) = paths(&tmp);
    let mut writer = open_source(&source);
    write_records(&mut writer, 0, 5_000, Duration::ZERO);
    let url = server.url();
    let pusher = spawn(push_cmd(&url, "RESTART", &source));
    let puller = spawn(pull_cmd(&url, "RESTART", &replica));
    let writing = std::thread::spawn(move || {
        write_records(&mut writer, 5_000, 40_000, Duration::from_secs(4));
        writer.close().unwrap();
    });
    std::thread::sleep(Duration::from_millis(1500));
    server.stop();
    std::thread::sleep(Duration::from_millis(1000));
    server.start_again();
    writing.join().unwrap();
    let push_out = wait_ok(pusher, "push");
    let pull_out = wait_ok(puller, "pull");
    let push_err = String::from_utf8_lossy(&push_out.stderr);
    let pull_err = String::from_utf8_lossy(&pull_out.stderr);
    assert!(
        push_err.contains("disconnected") || push_err.contains("retrying"),
        "push said: {push_err}"
    );
    assert!(
        pull_err.contains("disconnected") || pull_err.contains("retrying"),
        "pull said: {pull_err}"
    );
    assert_stream_exact(&server, "RESTART", &source);
    assert_same_journal(&source, &replica);
}

fn run_fail(c: &mut Command) -> String {
    let out = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(text.starts_with("kekbit: error: "), "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    text
}

/// A journal made with default options (records up to 64 MiB) is relayed
/// as long as its records fit a message; the first that does not stops the
/// push with one line naming it and both limits, after the records before
/// it are in the stream.
#[test]
fn a_record_over_max_payload_stops_the_push_with_both_numbers() {
    let server = NatsServer::start_with(ServerOptions {
        max_payload: Some(64 << 10),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("big");
    let mut writer = JournalOptions::new().open_writer(&source).unwrap();
    writer.append(&[1; 10]).unwrap();
    let big = writer.append(&[2; 100_000]).unwrap();
    writer.append(&[3; 10]).unwrap();
    writer.close().unwrap();
    let text = run_fail(&mut push_cmd(&server.url(), "BIG", &source));
    assert!(
        text.contains(&format!("position {big}"))
            && text.contains("100000")
            && text.contains("65536"),
        "the record and both numbers: {text}"
    );
    // The first record went; nothing of the large one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let end = rt.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut s = js.get_stream("BIG").await.unwrap();
        let last = s.info().await.unwrap().state.last_sequence;
        let raw = s.get_raw_message(last).await.unwrap();
        Message::parse(&raw.payload).unwrap().end_position()
    });
    assert_eq!(end, big);
}

#[test]
fn another_journals_stream_is_a_typed_error_on_both_sides() {
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (dir, id) in [(&a, 0xA), (&b, 0xB)] {
        let mut w = JournalOptions::new()
            .journal_id(id)
            .segment_bytes(64 << 10)
            .max_record_len(1024)
            .open_writer(dir)
            .unwrap();
        w.append(b"x").unwrap();
        w.close().unwrap();
    }
    wait_ok(spawn(push_cmd(&server.url(), "OWNED", &a)), "push a");
    let text = run_fail(&mut push_cmd(&server.url(), "OWNED", &b));
    assert!(
        text.contains("holds journal 000000000000000a, not journal 000000000000000b"),
        "{text}"
    );
    // A replica of b cannot take a's stream either.
    wait_ok(spawn(push_cmd(&server.url(), "OTHER", &b)), "push b");
    let replica = tmp.path().join("replica-of-b");
    wait_ok(spawn(pull_cmd(&server.url(), "OTHER", &replica)), "pull b");
    let text = run_fail(&mut pull_cmd(&server.url(), "OWNED", &replica));
    assert!(
        text.contains("holds journal 000000000000000a, not journal 000000000000000b"),
        "{text}"
    );
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("s");
    let mut w = open_source(&source);
    w.append(b"x").unwrap();
    drop(w);
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let text = run_fail(&mut push_cmd(&url, "S", &source));
    assert!(
        text.contains(&format!("cannot reach the NATS server at {url}")),
        "{text}"
    );
    let text = run_fail(&mut pull_cmd(&url, "S", &tmp.path().join("r")));
    assert!(text.contains("cannot reach the NATS server"), "{text}");
}
