//! The `kekbit` binary, run as a subprocess: round trips, following a live
//! writer, the state `info` reports, the damage `verify` finds, the demo,
//! and every read command against damaged files (never a panic).

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kekbit_nostd::Header;
use kekbit_nostd::format::{
    CAPACITY_OFFSET, CHANNEL_ID_OFFSET, CREATION_TIME_OFFSET, FLAGS_OFFSET, HEADER_LEN,
    IMMUTABLE_HEADER_LEN, MAX_RECORD_LEN_OFFSET, TICK_UNIT_OFFSET, TIMEOUT_OFFSET, VERSION_OFFSET,
    WRITER_ID_OFFSET,
};
use serde_json::Value;

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Exit 0 and nothing on standard error.
    fn assert_ok(&self, what: &str) {
        assert_eq!(self.code, Some(0), "{what}: {self:?}");
        assert!(self.stderr.is_empty(), "{what}: {self:?}");
    }

    /// Exit `code` with exactly one `kekbit: error:` line; returns it.
    fn assert_error(&self, code: i32, what: &str) -> &str {
        assert_eq!(self.code, Some(code), "{what}: {self:?}");
        assert_no_panic(&self.stderr, what);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: one error line expected: {self:?}");
        assert!(lines[0].starts_with("kekbit: error: "), "{what}: {self:?}");
        lines[0]
    }
}

fn assert_no_panic(stderr: &str, what: &str) {
    for sign in ["panicked", "internal error", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(sign), "{what}: {sign}: {stderr}");
    }
}

fn kekbit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kekbit"));
    // A panic would print a backtrace: the tests look for one.
    cmd.env("RUST_BACKTRACE", "1").stdin(Stdio::null());
    cmd
}

fn run<S: AsRef<OsStr>>(args: &[S]) -> Run {
    run_with_input(args, None)
}

fn run_with_input<S: AsRef<OsStr>>(args: &[S], input: Option<&[u8]>) -> Run {
    let mut cmd = kekbit();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("run kekbit");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Feed on a thread so a full pipe cannot deadlock us.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let output = child.wait_with_output().expect("wait for kekbit");
    Run {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes a file only its owner may write, whatever the umask: the read
/// commands refuse any other before looking at its bytes.
fn write_private(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes.as_ref())
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn arg(path: &Path) -> &OsStr {
    path.as_os_str()
}

/// `kekbit write PATH extra...` with `input` on standard input; must succeed.
fn write_channel(path: &Path, input: &[u8], extra: &[&str]) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("write"), arg(path)];
    args.extend(extra.iter().map(OsStr::new));
    run_with_input(&args, Some(input)).assert_ok("write");
}

fn info_json(path: &Path) -> Value {
    let run = run(&[OsStr::new("info"), OsStr::new("--json"), arg(path)]);
    run.assert_ok("info --json");
    serde_json::from_slice(&run.stdout).expect("info --json prints JSON")
}

/// Records as `cat --format json` reports them: (position, payload).
fn cat_json(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let run = run(&[
        OsStr::new("cat"),
        OsStr::new("--format"),
        OsStr::new("json"),
        arg(path),
    ]);
    run.assert_ok("cat --format json");
    run.stdout_text()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("one JSON object per line");
            let payload = match (&v["payload"], &v["payload_hex"]) {
                (Value::String(text), _) => text.as_bytes().to_vec(),
                (_, Value::String(hex)) => from_hex(hex),
                _ => panic!("no payload in {line}"),
            };
            assert_eq!(v["length"].as_u64(), Some(payload.len() as u64));
            (v["position"].as_u64().unwrap(), payload)
        })
        .collect()
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Polls `done` until it holds or 10 s pass.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A `kekbit write` left running with its standard input open.
fn live_writer(path: &Path, timeout: &str) -> Child {
    let child = kekbit()
        .args([
            OsStr::new("write"),
            arg(path),
            OsStr::new("--timeout"),
            OsStr::new(timeout),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kekbit write");
    wait_for("the channel to appear", || path.exists());
    child
}

#[test]
#[cfg_attr(miri, ignore)]
fn write_then_cat_round_trips_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.kekbit");
    let mut rng = Rng(0x5eed);
    let mut lines: Vec<Vec<u8>> = vec![b"alpha".to_vec(), Vec::new(), b"  spaced \t".to_vec()];
    for _ in 0..300 {
        let len = rng.below(120) as usize;
        // Any bytes but the newline, including NUL, CR and non-UTF-8.
        let line: Vec<u8> = rng.bytes(len).into_iter().filter(|&b| b != b'\n').collect();
        lines.push(line);
    }
    lines.push(Vec::new());
    lines.push(b"last, without a newline".to_vec());
    let mut input = lines.join(&b'\n');
    let expected_text = {
        let mut t = input.clone();
        t.push(b'\n');
        t
    };
    write_channel(&path, &input, &["--checksums", "--capacity", "256KiB"]);

    let cat = run(&[OsStr::new("cat"), arg(&path)]);
    cat.assert_ok("cat");
    assert_eq!(cat.stdout, expected_text);

    let records = cat_json(&path);
    let payloads: Vec<Vec<u8>> = records.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(payloads, lines);

    // --from starts at any record boundary `cat --format json` reported.
    let (position, _) = records[3];
    let from = run(&[
        OsStr::new("cat"),
        OsStr::new("--format"),
        OsStr::new("hex"),
        OsStr::new("--from"),
        OsStr::new(&position.to_string()),
        arg(&path),
    ]);
    from.assert_ok("cat --from");
    let hex: Vec<Vec<u8>> = from.stdout_text().lines().map(from_hex).collect();
    assert_eq!(hex, lines[3..]);

    // A position inside a record is refused, naming the path.
    let inside = run(&[
        OsStr::new("cat"),
        OsStr::new("--from"),
        OsStr::new("4"),
        arg(&path),
    ]);
    let line = inside.assert_error(1, "cat --from 4");
    assert!(
        line.contains("lines.kekbit") && line.contains("--from 4"),
        "{line}"
    );

    // And the channel verifies.
    let verify = run(&[OsStr::new("verify"), arg(&path)]);
    verify.assert_ok("verify");
    assert!(
        verify
            .stdout_text()
            .contains(&format!("ok: {} records", lines.len())),
        "{verify:?}"
    );

    // An empty input makes an empty, closed channel.
    let empty = dir.path().join("empty.kekbit");
    input.clear();
    write_channel(&empty, &input, &[]);
    assert!(run(&[OsStr::new("cat"), arg(&empty)]).stdout.is_empty());
    assert_eq!(info_json(&empty)["records"], 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn len32_framing_round_trips_any_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames.kekbit");
    let mut rng = Rng(42);
    let mut records: Vec<Vec<u8>> = vec![Vec::new(), b"\n\n".to_vec(), vec![0xff, 0x00, 0xfe]];
    for _ in 0..200 {
        let len = rng.below(300) as usize;
        records.push(rng.bytes(len));
    }
    let mut input = Vec::new();
    for r in &records {
        input.extend_from_slice(&(r.len() as u32).to_le_bytes());
        input.extend_from_slice(r);
    }
    write_channel(&path, &input, &["--framing", "len32", "--checksums"]);
    let read: Vec<Vec<u8>> = cat_json(&path).into_iter().map(|(_, p)| p).collect();
    assert_eq!(read, records);

    // A frame cut short is an error naming the cause; the records before
    // it are kept and the channel is closed.
    let cut = dir.path().join("cut.kekbit");
    let mut short = Vec::new();
    short.extend_from_slice(&3u32.to_le_bytes());
    short.extend_from_slice(b"abc");
    short.extend_from_slice(&10u32.to_le_bytes());
    short.extend_from_slice(b"only5");
    let run_cut = run_with_input(
        &[
            OsStr::new("write"),
            arg(&cut),
            OsStr::new("--framing"),
            OsStr::new("len32"),
        ],
        Some(&short),
    );
    let line = run_cut.assert_error(1, "write of a cut frame");
    assert!(line.contains("inside a frame (5 of 10 bytes)"), "{line}");
    assert!(
        line.contains("cut.kekbit: "),
        "the error names the path: {line}"
    );
    assert_eq!(cat_json(&cut), [(0, b"abc".to_vec())]);
    assert_eq!(info_json(&cut)["state"], "closed");
}

#[test]
#[cfg_attr(miri, ignore)]
fn write_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.kekbit");
    write_channel(&path, b"one\n", &[]);
    let before = fs::read(&path).unwrap();

    let again = run_with_input(&[OsStr::new("write"), arg(&path)], Some(b"two\n"));
    let line = again.assert_error(1, "write over an existing channel");
    assert!(
        line.contains("c.kekbit") && line.contains("already exists"),
        "{line}"
    );
    assert_eq!(fs::read(&path).unwrap(), before, "the channel is untouched");
    let folder = run_with_input(&[OsStr::new("write"), arg(dir.path())], Some(b"x\n"));
    let line = folder.assert_error(1, "write over a folder");
    assert!(line.contains("is a folder"), "{line}");

    // A record over the maximum: the error says which record.
    let small = dir.path().join("small.kekbit");
    let long = run_with_input(
        &[
            OsStr::new("write"),
            arg(&small),
            OsStr::new("--max-record"),
            OsStr::new("4"),
        ],
        Some(b"ok\ntoo long\n"),
    );
    let line = long.assert_error(1, "write of a too-long record");
    assert!(
        line.contains("small.kekbit: ")
            && line.contains("after 1 records")
            && line.contains("maximum record of 4 bytes"),
        "{line}"
    );
    assert_eq!(cat_json(&small), [(0, b"ok".to_vec())]);
    assert_eq!(info_json(&small)["state"], "closed");

    // Input without newlines is refused once it is longer than a record
    // can be, not read into memory to its end.
    let endless = dir.path().join("endless.kekbit");
    let mut child = kekbit()
        .args([
            OsStr::new("write"),
            arg(&endless),
            OsStr::new("--max-record"),
            OsStr::new("1KiB"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let chunk = [b'x'; 1 << 16];
        let mut fed = 0usize;
        // 16 MiB at most; a write fails once `kekbit` has gone.
        while fed < 16 << 20 && stdin.write_all(&chunk).is_ok() {
            fed += chunk.len();
        }
        fed
    });
    let output = child.wait_with_output().unwrap();
    let fed = feeder.join().unwrap();
    let r = Run {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let line = r.assert_error(1, "write of a line without end");
    assert!(line.contains("maximum record of 1024 bytes"), "{line}");
    assert!(fed < 4 << 20, "kekbit read {fed} bytes of one line");

    // Options that make no channel are usage errors (status 2).
    let bad = run_with_input(
        &[
            OsStr::new("write"),
            arg(&dir.path().join("x.kekbit")),
            OsStr::new("--capacity"),
            OsStr::new("12"),
        ],
        Some(b""),
    );
    bad.assert_error(2, "write --capacity 12");
}

#[test]
#[cfg_attr(miri, ignore)]
fn write_makes_no_folder_unless_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo/dir/c.kekbit");
    let r = run_with_input(&[OsStr::new("write"), arg(&path)], Some(b"a\n"));
    assert!(
        !dir.path().join("typo").exists(),
        "write made the folders: {r:?}"
    );
    let line = r.assert_error(1, "write into a missing folder");
    let folder = dir.path().join("typo/dir");
    assert!(
        line.contains(&format!("folder {} does not exist", folder.display()))
            && line.contains("--parents"),
        "{line}"
    );

    write_channel(&path, b"a\n", &["--parents"]);
    assert_eq!(cat_json(&path), [(0, b"a".to_vec())]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn read_commands_refuse_files_others_may_write_unless_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.kekbit");
    write_channel(&path, b"a\n", &[]);
    set_mode(&path, 0o664);
    for command in ["cat", "info", "verify"] {
        let r = run(&[OsStr::new(command), arg(&path)]);
        let line = r.assert_error(1, command);
        assert!(
            line.contains("c.kekbit: refused: mode 0664 lets group or others write it")
                && line.contains("--shared"),
            "{line}"
        );
        run(&[OsStr::new(command), OsStr::new("--shared"), arg(&path)])
            .assert_ok(&format!("{command} --shared"));
    }
    assert_eq!(
        run(&[OsStr::new("cat"), OsStr::new("--shared"), arg(&path)]).stdout_text(),
        "a\n"
    );

    // A link is refused, shared or not: give the real path.
    set_mode(&path, 0o600);
    let link = dir.path().join("link.kekbit");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    for shared in [&[][..], &["--shared"]] {
        let mut args = vec![OsStr::new("cat")];
        args.extend(shared.iter().map(OsStr::new));
        args.push(arg(&link));
        let r = run(&args);
        let line = r.assert_error(1, "cat of a link");
        assert!(
            line.contains("link.kekbit: refused: is a symbolic link"),
            "{line}"
        );
        assert!(!line.contains("--shared"), "{line}");
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn usage_errors_exit_2_and_missing_files_exit_1() {
    let alone = run::<&str>(&[]);
    assert_eq!(alone.code, Some(2), "{alone:?}");
    assert!(alone.stderr.contains("Usage"), "{alone:?}");
    for args in [
        &["write"][..],
        &["write", "x", "--capacity", "lots"],
        &["write", "x", "--timeout", "30"],
        &["write", "x", "--sync", "sometimes"],
        &["cat", "x", "--format", "xml"],
        &["demo", "--records", "many"],
        &["frobnicate"],
    ] {
        let r = run(args);
        let line = r.assert_error(2, &format!("{args:?}"));
        assert!(
            line.contains("(usage: kekbit") || line.contains("invalid value"),
            "{line}"
        );
    }
    let demo = run(&["demo", "--record-size", "8"]);
    demo.assert_error(2, "demo --record-size 8");

    let help = run(&["--help"]);
    help.assert_ok("--help");
    assert!(help.stdout_text().contains("demo"));

    let dir = tempfile::tempdir().unwrap();
    for cmd in ["cat", "info", "verify"] {
        let r = run(&[cmd, "/nonexistent/channel.kekbit"]);
        let line = r.assert_error(1, cmd);
        assert!(line.contains("/nonexistent/channel.kekbit"), "{line}");
        let r = run(&[OsStr::new(cmd), arg(dir.path())]);
        let line = r.assert_error(1, cmd);
        assert!(line.contains("is a folder"), "{line}");
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn follow_sees_records_a_concurrent_write_adds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.kekbit");
    let mut writer = live_writer(&path, "10s");
    let mut writer_in = writer.stdin.take().unwrap();
    writer_in.write_all(b"first\n").unwrap();
    writer_in.flush().unwrap();

    let mut cat = kekbit()
        .args([OsStr::new("cat"), OsStr::new("--follow"), arg(&path)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = cat.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("cat --follow printed a line")
    };
    assert_eq!(next(), "first");
    for word in ["second", "", "third"] {
        writer_in.write_all(format!("{word}\n").as_bytes()).unwrap();
        writer_in.flush().unwrap();
        assert_eq!(next(), word);
    }
    // End of input closes the channel; `cat --follow` then ends, status 0.
    drop(writer_in);
    assert!(writer.wait().unwrap().success());
    let status = cat.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut err = String::new();
    cat.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.is_empty(), "{err}");
    assert!(
        rx.recv_timeout(Duration::from_secs(1)).is_err(),
        "no more lines"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn info_reports_each_state() {
    let dir = tempfile::tempdir().unwrap();

    // Open: a live writer, heartbeating while it waits for input.
    let open = dir.path().join("open.kekbit");
    // A timeout long enough that a loaded machine cannot make the writer
    // miss it: it heartbeats every 500 ms while it waits.
    let mut writer = live_writer(&open, "2s");
    let mut writer_in = writer.stdin.take().unwrap();
    writer_in.write_all(b"a\nbb\n").unwrap();
    writer_in.flush().unwrap();
    wait_for("two records", || info_json(&open)["records"] == 2);
    // Longer than the timeout: the heartbeat keeps it open.
    thread::sleep(Duration::from_millis(2500));
    let info = info_json(&open);
    assert_eq!(info["state"], "open", "{info}");
    assert_eq!(info["payload_bytes"], 3);
    assert_eq!(info["header"]["timeout_ms"], 2000.0);
    assert!(
        info["heartbeat"]["age_ms"].as_f64().unwrap() < 2000.0,
        "{info}"
    );

    // Closed: end of input.
    drop(writer_in);
    assert!(writer.wait().unwrap().success());
    let info = info_json(&open);
    assert_eq!(info["state"], "closed", "{info}");
    assert_eq!(info["records"], 2);
    let capacity = info["header"]["capacity_bytes"].as_u64().unwrap();
    let used = info["used_bytes"].as_u64().unwrap();
    let free = info["free_bytes"].as_u64().unwrap();
    assert_eq!(used + free, capacity);
    assert_eq!(used, 2 * 16);

    // Full: more input than fits; `write` reports it and marks the channel.
    let full = dir.path().join("full.kekbit");
    let input: Vec<u8> = (0..100)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let r = run_with_input(
        &[
            OsStr::new("write"),
            arg(&full),
            OsStr::new("--capacity"),
            OsStr::new("256"),
        ],
        Some(&input),
    );
    let line = r.assert_error(1, "write past capacity");
    assert!(line.contains("channel full"), "{line}");
    let info = info_json(&full);
    assert_eq!(info["state"], "full", "{info}");
    assert_eq!(info["records"], 15); // 15 records of 16 bytes, then the marker
    assert_eq!(info["header"]["capacity_bytes"], 256);

    // Abandoned: the writer is killed, and stays silent past its timeout.
    let dead = dir.path().join("dead.kekbit");
    let mut writer = live_writer(&dead, "200ms");
    let mut writer_in = writer.stdin.take().unwrap();
    writer_in.write_all(b"last words\n").unwrap();
    writer_in.flush().unwrap();
    wait_for("the record", || info_json(&dead)["records"] == 1);
    writer.kill().unwrap();
    writer.wait().unwrap();
    thread::sleep(Duration::from_millis(500));
    let info = info_json(&dead);
    assert_eq!(info["state"], "abandoned", "{info}");
    assert_eq!(info["records"], 1);
    let text = run(&[OsStr::new("info"), arg(&dead)]);
    text.assert_ok("info");
    assert!(text.stdout_text().contains("abandoned"), "{text:?}");

    // `cat --follow` on it ends with one error line instead of hanging.
    let follow = run(&[OsStr::new("cat"), OsStr::new("--follow"), arg(&dead)]);
    let line = follow.assert_error(1, "cat --follow on an abandoned channel");
    assert!(line.contains("abandoned"), "{line}");
    assert_eq!(follow.stdout, b"last words\n");
}

/// A closed channel with checksums and `n` records of 24 bytes (32-byte
/// spans): record `i` is at position `32 * i`. Its writer's timeout is
/// 1 ms, so should its end marker be lost, the writer is soon judged gone.
fn sound_channel(dir: &Path, name: &str, n: usize) -> PathBuf {
    let path = dir.join(name);
    let input: String = (0..n).map(|i| format!("record number {i:010}\n")).collect();
    write_channel(
        &path,
        input.as_bytes(),
        &["--checksums", "--capacity", "4KiB", "--timeout", "1ms"],
    );
    path
}

fn damaged(dir: &Path, name: &str, source: &Path, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = fs::read(source).unwrap();
    edit(&mut bytes);
    let path = dir.join(name);
    write_private(&path, bytes).unwrap();
    path
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Re-encodes the header after `edit`, so its checksum matches again and
/// the field check is what has to catch the change.
fn reseal(bytes: &mut [u8], edit: impl FnOnce(&mut [u8; IMMUTABLE_HEADER_LEN])) {
    let mut header = [0u8; IMMUTABLE_HEADER_LEN];
    header.copy_from_slice(&bytes[..IMMUTABLE_HEADER_LEN]);
    edit(&mut header);
    let sum = crc32c(&header[..IMMUTABLE_HEADER_LEN - 4]);
    header[IMMUTABLE_HEADER_LEN - 4..].copy_from_slice(&sum.to_le_bytes());
    bytes[..IMMUTABLE_HEADER_LEN].copy_from_slice(&header);
}

/// CRC32C (Castagnoli), bit by bit: the header checksum.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn the_test_crc_is_crc32c() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
#[cfg_attr(miri, ignore)]
fn verify_names_each_kind_of_damage_and_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let sound = sound_channel(dir.path(), "sound.kekbit", 10);
    let ok = run(&[OsStr::new("verify"), arg(&sound)]);
    ok.assert_ok("verify sound");
    assert!(
        ok.stdout_text()
            .contains("ok: 10 records, 240 payload bytes, closed"),
        "{ok:?}"
    );
    assert_eq!(ok.stdout_text().lines().count(), 1);
    let sound_bytes = fs::read(&sound).unwrap();
    let header = Header::decode(&sound_bytes).unwrap();
    let info = info_json(&sound);
    assert_eq!(info["header"]["capacity_bytes"], header.capacity_bytes);
    assert_eq!(info["header"]["max_record_len"], header.max_record_len);
    assert_eq!(info["header"]["checksums"], true);
    assert_eq!(
        info["header"]["header_checksum"],
        u32::from_le_bytes(sound_bytes[124..128].try_into().unwrap())
    );
    let record = |i: usize| HEADER_LEN + 32 * i;

    type Edit = Box<dyn FnOnce(&mut Vec<u8>)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "payload",
            Box::new(move |b| b[record(3) + 12] ^= 0x01),
            "at record offset 96 (file offset 288): checksum mismatch",
        ),
        (
            "stored checksum",
            Box::new(move |b| b[record(4) + 4] ^= 0x80),
            "at record offset 128 (file offset 320): checksum mismatch",
        ),
        (
            "length",
            Box::new(move |b| put_u32(b, record(2), 0x8000_0000 | 23)),
            "at record offset 64 (file offset 256): checksum mismatch",
        ),
        (
            "commit word",
            Box::new(move |b| put_u32(b, record(5), 0x1234_5678)),
            "at record offset 160 (file offset 352): corrupt record: invalid commit word 0x12345678",
        ),
        (
            "length over the maximum",
            Box::new(move |b| put_u32(b, record(6), 0x8000_0000 | (header.max_record_len + 1))),
            "at record offset 192 (file offset 384): corrupt record: record length",
        ),
        (
            "length past the end",
            Box::new(move |b| put_u32(b, record(7), 0x8000_0000 | header.max_record_len)),
            "at record offset 224 (file offset 416): corrupt record: record length",
        ),
        (
            "zeroed commit word",
            Box::new(move |b| put_u32(b, record(8), 0)),
            "data after the end of the records at file offset 480 (record offset 288): the commit \
             word at record offset 256 was zeroed",
        ),
        (
            "last commit word zeroed",
            Box::new(move |b| put_u32(b, record(9), 0)),
            "data after the end of the records at file offset 512 (record offset 320): the commit \
             word at record offset 288 was zeroed",
        ),
        (
            "close marker zeroed",
            Box::new(move |b| put_u32(b, record(10), 0)),
            "",
        ),
        (
            "truncated file",
            Box::new(|b| b.truncate(b.len() - 100)),
            "truncated at offset",
        ),
        (
            "extended file",
            Box::new(|b| b.extend_from_slice(&[0; 64])),
            "unexpected data at offset",
        ),
        (
            "signature",
            Box::new(|b| b[1] = b'X'),
            "bad channel header at offset 0: not a kekbit channel",
        ),
        (
            "header checksum",
            Box::new(|b| b[WRITER_ID_OFFSET] ^= 1),
            "bad channel header at offset 124: header checksum mismatch",
        ),
        (
            "version",
            Box::new(|b| reseal(b, |h| put_u32(h, VERSION_OFFSET, 3))),
            "bad channel header at offset 8: unsupported format version 3",
        ),
        (
            "flags",
            Box::new(|b| reseal(b, |h| put_u32(h, FLAGS_OFFSET, 0x10))),
            "bad channel header at offset 12: unknown header flags",
        ),
        (
            "capacity",
            Box::new(|b| reseal(b, |h| put_u32(h, CAPACITY_OFFSET, 4095))),
            "bad channel header at offset 32: capacity 4095 is invalid",
        ),
        (
            "capacity beyond the file",
            Box::new(|b| reseal(b, |h| put_u32(h, CAPACITY_OFFSET, 8192))),
            "",
        ),
        (
            "max record length",
            Box::new(|b| reseal(b, |h| put_u32(h, MAX_RECORD_LEN_OFFSET, 0))),
            "bad channel header at offset 36: maximum record length 0",
        ),
        (
            "tick unit",
            Box::new(|b| reseal(b, |h| put_u32(h, TICK_UNIT_OFFSET, 9))),
            "bad channel header at offset 56: unknown tick unit code 9",
        ),
    ];
    for (name, edit, expected) in cases {
        let path = damaged(dir.path(), &format!("{name}.kekbit"), &sound, edit);
        let r = run(&[OsStr::new("verify"), arg(&path)]);
        if name == "close marker zeroed" {
            // Only the marker is gone: every record is sound, and the
            // channel now reads as open (its writer long gone).
            r.assert_ok(name);
            assert!(r.stdout_text().contains("10 records"), "{r:?}");
            assert_eq!(info_json(&path)["state"], "abandoned");
            continue;
        }
        if name == "capacity beyond the file" {
            let line = r.assert_error(1, name);
            assert!(
                line.contains("offset 32") || line.contains("truncated at offset"),
                "{line}"
            );
            continue;
        }
        let line = r.assert_error(1, name);
        assert!(line.contains(&format!("{name}.kekbit: ")), "{name}: {line}");
        assert!(
            line.contains(expected),
            "{name}: expected {expected:?} in {line}"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn damaged_files_never_panic_any_read_command() {
    let dir = tempfile::tempdir().unwrap();
    let sound = sound_channel(dir.path(), "sound.kekbit", 20);
    let bytes = fs::read(&sound).unwrap();
    let mut rng = Rng(0xdead_beef);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();

    for len in [0, 1, 7, 8, 63, 64, 65, 127, 128, 129, 200, bytes.len() - 1] {
        files.push((format!("truncated to {len}"), bytes[..len].to_vec()));
    }
    files.push(("zeroed".into(), vec![0; bytes.len()]));
    let mut zero_header = bytes.clone();
    zero_header[..HEADER_LEN].fill(0);
    files.push(("zeroed header".into(), zero_header));
    let mut zero_records = bytes.clone();
    zero_records[HEADER_LEN..].fill(0);
    files.push(("zeroed records".into(), zero_records));
    for len in [16, 128, 300, bytes.len()] {
        files.push((format!("random {len}"), rng.bytes(len)));
    }
    for i in 0..8 {
        // A sound header over random records.
        let mut b = bytes.clone();
        let noise = rng.bytes(bytes.len() - HEADER_LEN);
        b[HEADER_LEN..].copy_from_slice(&noise);
        files.push((format!("random records {i}"), b));
        // Random words sprinkled over the records.
        let mut b = bytes.clone();
        for _ in 0..4 {
            let at = HEADER_LEN + 4 * rng.below(((bytes.len() - HEADER_LEN) / 4) as u64) as usize;
            put_u32(&mut b, at, rng.next() as u32);
        }
        files.push((format!("random words {i}"), b));
    }
    for at in 0..HEADER_LEN {
        let mut b = bytes.clone();
        b[at] ^= 0xff;
        files.push((format!("header byte {at} flipped"), b));
    }
    // Every field changed to each awkward value, with the checksum resealed.
    let fields: [(usize, usize); 9] = [
        (VERSION_OFFSET, 4),
        (FLAGS_OFFSET, 4),
        (WRITER_ID_OFFSET, 8),
        (CHANNEL_ID_OFFSET, 8),
        (CAPACITY_OFFSET, 4),
        (MAX_RECORD_LEN_OFFSET, 4),
        (TIMEOUT_OFFSET, 8),
        (CREATION_TIME_OFFSET, 8),
        (TICK_UNIT_OFFSET, 4),
    ];
    for (offset, width) in fields {
        for value in [0u64, 1, 8, 16, 17, 0x7fff_ffff, 0xffff_ffff, u64::MAX] {
            let mut b = bytes.clone();
            reseal(&mut b, |h| {
                h[offset..offset + width].copy_from_slice(&value.to_le_bytes()[..width]);
            });
            files.push((format!("field at {offset} = {value:#x}"), b));
        }
    }

    let commands: [&[&str]; 6] = [
        &["cat"],
        &["cat", "--format", "json"],
        &["cat", "--from", "32"],
        &["info"],
        &["info", "--json"],
        &["verify"],
    ];
    let mut failures = 0;
    for (i, (name, content)) in files.iter().enumerate() {
        let path = dir.path().join(format!("damaged-{i}.kekbit"));
        write_private(&path, content).unwrap();
        for command in commands {
            let mut args: Vec<&OsStr> = command.iter().map(OsStr::new).collect();
            args.push(arg(&path));
            let r = run(&args);
            let what = format!("{command:?} on {name}");
            assert_no_panic(&r.stderr, &what);
            match r.code {
                Some(0) => assert!(r.stderr.is_empty(), "{what}: {r:?}"),
                Some(1) => {
                    r.assert_error(1, &what);
                    failures += 1;
                }
                other => panic!("{what}: exit status {other:?}: {r:?}"),
            }
        }
    }
    // Nearly every damaged file is refused.
    assert!(
        failures > files.len() * 3,
        "{failures} failures over {} files",
        files.len()
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn cat_into_a_closed_pipe_stops_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.kekbit");
    let input: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    write_channel(&path, input.as_bytes(), &[]);
    let mut cat = kekbit()
        .args([OsStr::new("cat"), arg(&path)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    cat.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then closed
    let output = cat.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
}

#[test]
#[cfg_attr(miri, ignore)]
fn demo_with_small_numbers_prints_its_table() {
    let dir = tempfile::tempdir().unwrap();
    // A root must be private; tempdir's mode follows the umask.
    set_mode(dir.path(), 0o700);
    for _ in 0..2 {
        // The second run replaces the first run's channel.
        let r = run(&[
            OsStr::new("demo"),
            OsStr::new("--records"),
            OsStr::new("5000"),
            OsStr::new("--readers"),
            OsStr::new("2"),
            OsStr::new("--record-size"),
            OsStr::new("32"),
            OsStr::new("--dir"),
            arg(dir.path()),
        ]);
        r.assert_ok("demo");
        let out = r.stdout_text();
        for needle in [
            "records/s",
            "GB/s",
            "p50",
            "p99",
            "p99.9",
            "writer",
            "reader 1",
            "reader 2",
            " info ",
            " cat ",
        ] {
            assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
        }
        assert!(!out.contains("reader 3"), "{out}");
    }
    let path = kekbit_std::storage_path(dir.path(), 0x6b62_6465_6d6f);
    let info = info_json(&path);
    assert_eq!(info["state"], "closed");
    assert_eq!(info["records"], 5000);
    assert_eq!(info["payload_bytes"], 5000 * 32);
    run(&[OsStr::new("verify"), arg(&path)]).assert_ok("verify the demo channel");

    // A file that is not a demo channel is never replaced.
    let other = tempfile::tempdir().unwrap();
    let squatter = kekbit_std::storage_path(other.path(), 0x6b62_6465_6d6f);
    fs::create_dir_all(squatter.parent().unwrap()).unwrap();
    fs::write(&squatter, b"precious").unwrap();
    let r = run(&[
        OsStr::new("demo"),
        OsStr::new("--records"),
        OsStr::new("10"),
        OsStr::new("--dir"),
        arg(other.path()),
    ]);
    let line = r.assert_error(1, "demo over a foreign file");
    assert!(line.contains("not a finished demo channel"), "{line}");
    assert_eq!(fs::read(&squatter).unwrap(), b"precious");

    // The folder made for the channel is private; a root that others may
    // write is refused.
    let folder = path.parent().unwrap();
    assert_eq!(mode_of(folder), 0o700, "{}", folder.display());
    let open_root = tempfile::tempdir().unwrap();
    set_mode(open_root.path(), 0o777);
    let r = run(&[
        OsStr::new("demo"),
        OsStr::new("--records"),
        OsStr::new("10"),
        OsStr::new("--dir"),
        arg(open_root.path()),
    ]);
    let line = r.assert_error(1, "demo in a root anyone may write");
    assert!(
        line.contains("refused: mode 0777 lets group or others write it"),
        "{line}"
    );
    assert_eq!(fs::read_dir(open_root.path()).unwrap().count(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn info_shows_every_header_field_and_write_sets_them() {
    let dir = tempfile::tempdir().unwrap();
    for (i, sync) in ["none", "close", "record", "records:2", "bytes:1KiB"]
        .iter()
        .enumerate()
    {
        let path = dir.path().join(format!("c{i}.kekbit"));
        write_channel(
            &path,
            b"x\nyy\nzzz\n",
            &[
                "--sync",
                sync,
                "--channel-id",
                "7",
                "--writer-id",
                "9",
                "--capacity",
                "8KiB",
                "--max-record",
                "100",
                "--timeout",
                "1500us",
            ],
        );
        let info = info_json(&path);
        let header = &info["header"];
        assert_eq!(header["channel_id"], 7, "{info}");
        assert_eq!(header["writer_id"], 9);
        assert_eq!(header["capacity_bytes"], 8192);
        assert_eq!(header["max_record_len"], 100);
        assert_eq!(header["timeout_ticks"], 1500);
        assert_eq!(header["tick_unit"], "micros");
        assert_eq!(header["timeout_ms"], 1.5);
        assert_eq!(header["version"], 2);
        assert_eq!(header["checksums"], false);
        assert_eq!(header["epoch_time"], true);
        assert_eq!(header["segment"], false);
        assert!(header["creation_time"].as_u64().unwrap() > 0);
        assert_eq!(info["records"], 3);
        assert_eq!(info["state"], "closed");
        assert_eq!(info["file_bytes"], 192 + 8192);

        let text = run(&[OsStr::new("info"), arg(&path)]);
        text.assert_ok("info");
        let text = text.stdout_text();
        for field in [
            "path",
            "state",
            "records",
            "payload",
            "used",
            "free",
            "last heartbeat",
            "version",
            "flags",
            "channel id",
            "writer id",
            "capacity",
            "max record",
            "timeout",
            "created",
            "tick unit",
            "header crc",
            "file",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{field} "))),
                "{field:?} missing from:\n{text}"
            );
        }
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn verify_accepts_full_abandoned_and_resumed_channels() {
    use kekbit_nostd::{AlignedBuffer, SliceRegion, Writer};
    const FILE_LEN: usize = HEADER_LEN + 4096;
    let dir = tempfile::tempdir().unwrap();

    // Full: `write` fills it and reports that.
    let full = dir.path().join("full.kekbit");
    let input: Vec<u8> = (0..1000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let r = run_with_input(
        &[
            OsStr::new("write"),
            arg(&full),
            OsStr::new("--checksums"),
            OsStr::new("--capacity"),
            OsStr::new("4KiB"),
        ],
        Some(&input),
    );
    r.assert_error(1, "write past capacity");
    let ok = run(&[OsStr::new("verify"), arg(&full)]);
    ok.assert_ok("verify full");
    assert!(ok.stdout_text().contains(", full;"), "{ok:?}");
    assert_eq!(ok.stdout_text().lines().count(), 1);

    // Abandoned: the writer is killed between records.
    let dead = dir.path().join("dead.kekbit");
    let mut writer = kekbit()
        .args([
            OsStr::new("write"),
            arg(&dead),
            OsStr::new("--checksums"),
            OsStr::new("--capacity"),
            OsStr::new("4KiB"),
            OsStr::new("--timeout"),
            OsStr::new("1ms"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut writer_in = writer.stdin.take().unwrap();
    writer_in.write_all(b"one\ntwo\nthree\n").unwrap();
    writer_in.flush().unwrap();
    wait_for("three records", || {
        path_records(&dead).is_some_and(|n| n == 3)
    });
    writer.kill().unwrap();
    writer.wait().unwrap();
    let ok = run(&[OsStr::new("verify"), arg(&dead)]);
    ok.assert_ok("verify abandoned");
    assert!(ok.stdout_text().contains("ok: 3 records"), "{ok:?}");

    // Resumed after a torn tail: a record half written when the writer
    // died (its commit word stored, its payload and checksum not), with
    // leftovers after it; `Writer::resume` discards and zeroes them.
    let mut buffer = AlignedBuffer::<FILE_LEN>::new();
    let bytes = fs::read(&dead).unwrap();
    assert_eq!(bytes.len(), FILE_LEN);
    buffer.as_mut_slice().copy_from_slice(&bytes);
    let end = HEADER_LEN + 3 * 16;
    let torn = buffer.as_mut_slice();
    put_u32(torn, end, 0x8000_0000 | 40);
    put_u32(torn, end + 4, 0x1234_5678);
    torn[end + 8..end + 20].fill(b'z');
    torn[end + 200..end + 210].fill(b'q');
    let torn_path = dir.path().join("torn.kekbit");
    write_private(&torn_path, &*torn).unwrap();
    let r = run(&[OsStr::new("verify"), arg(&torn_path)]);
    let line = r.assert_error(1, "verify torn");
    assert!(line.contains("record offset 48"), "{line}");

    let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let mut resumed = Writer::resume(&mut region).unwrap();
    assert_eq!(resumed.records_written(), 3);
    resumed.write(b"four").unwrap();
    let _ = resumed.leave_open();
    let resumed_path = dir.path().join("resumed.kekbit");
    write_private(&resumed_path, buffer.as_mut_slice()).unwrap();
    let ok = run(&[OsStr::new("verify"), arg(&resumed_path)]);
    ok.assert_ok("verify resumed, open");
    assert!(ok.stdout_text().contains("ok: 4 records"), "{ok:?}");

    let mut region = SliceRegion::new(buffer.as_mut_slice()).unwrap();
    let mut resumed = Writer::resume(&mut region).unwrap();
    resumed.write(b"five").unwrap();
    resumed.close();
    drop(resumed);
    write_private(&resumed_path, buffer.as_mut_slice()).unwrap();
    let ok = run(&[OsStr::new("verify"), arg(&resumed_path)]);
    ok.assert_ok("verify resumed, closed");
    assert!(
        ok.stdout_text()
            .contains("ok: 5 records, 19 payload bytes, closed"),
        "{ok:?}"
    );
}

/// The record count `info --json` reports, if it succeeds.
fn path_records(path: &Path) -> Option<u64> {
    let r = run(&[OsStr::new("info"), OsStr::new("--json"), arg(path)]);
    let v: Value = serde_json::from_slice(&r.stdout).ok()?;
    v["records"].as_u64()
}

#[test]
#[cfg_attr(miri, ignore)]
fn verify_accepts_what_an_unused_grant_leaves_behind() {
    use kekbit_nostd::ChannelConfig;
    use kekbit_std::ShmWriter;
    let dir = tempfile::tempdir().unwrap();
    for checksums in [false, true] {
        for close in [false, true] {
            let path = dir.path().join(format!("grant-{checksums}-{close}.kekbit"));
            let config = ChannelConfig::new(1)
                .capacity_bytes(4096)
                .checksums(checksums);
            let mut writer = ShmWriter::create(&path, &config).unwrap();
            writer.write(b"first").unwrap();
            // A record committed shorter than its grant, then a grant
            // dropped unpublished: their bytes stay past the end.
            let mut grant = writer.reserve(200).unwrap();
            grant.fill(0xC3);
            grant.commit(3).unwrap();
            writer.reserve(100).unwrap().fill(b'x');
            if close {
                writer.close().unwrap();
            } else {
                writer.heartbeat();
                let _ = writer; // still open, writer alive
            }
            let ok = run(&[OsStr::new("verify"), arg(&path)]);
            ok.assert_ok(&format!("verify, checksums {checksums}, closed {close}"));
            assert!(ok.stdout_text().contains("ok: 2 records"), "{ok:?}");
        }
    }

    // But records cut off by a zeroed commit word are found, checksums or
    // not, even within one maximum record of the end.
    for checksums in [false, true] {
        let path = dir.path().join(format!("cut-{checksums}.kekbit"));
        let config = ChannelConfig::new(1)
            .capacity_bytes(4096)
            .checksums(checksums);
        let mut writer = ShmWriter::create(&path, &config).unwrap();
        for word in ["zero", "one", "two", "three"] {
            writer.write(word.as_bytes()).unwrap();
        }
        writer.close().unwrap();
        let mut bytes = fs::read(&path).unwrap();
        put_u32(&mut bytes, HEADER_LEN + 16, 0);
        write_private(&path, bytes).unwrap();
        let r = run(&[OsStr::new("verify"), arg(&path)]);
        let line = r.assert_error(1, &format!("verify cut, checksums {checksums}"));
        assert!(
            line.contains("record offset 32): the commit word at record offset 16 was zeroed"),
            "{line}"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn awkward_paths_stay_valid_json_and_one_error_line() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let name = OsStr::from_bytes(b"q\"uote \\back\nline \xff.kekbit");
    let path = dir.path().join(name);
    write_channel(&path, b"a\n", &[]);
    let info = info_json(&path);
    let shown = info["path"].as_str().unwrap();
    assert!(
        shown.ends_with("q\"uote \\back\nline \u{fffd}.kekbit"),
        "{shown:?}"
    );
    assert_eq!(info["records"], 1);
    // An error about it is still one line.
    let mut bytes = fs::read(&path).unwrap();
    bytes[1] = b'X';
    write_private(&path, bytes).unwrap();
    for command in ["cat", "info", "verify"] {
        let r = run(&[OsStr::new(command), arg(&path)]);
        let line = r.assert_error(1, command);
        assert!(line.contains("back line"), "{line}");
    }
}
