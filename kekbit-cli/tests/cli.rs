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

// ---------------------------------------------------------------------------
// Journals: `write --journal DIR`, and `cat`, `info`, `verify` on a folder.

/// `kekbit write --journal DIR extra...` with `input`; must succeed.
fn write_journal(dir: &Path, input: &[u8], extra: &[&str]) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("write"), OsStr::new("--journal"), arg(dir)];
    args.extend(extra.iter().map(OsStr::new));
    run_with_input(&args, Some(input)).assert_ok("write --journal");
}

/// `n` numbered lines, `record number 0000000000` and on (24 bytes each).
fn numbered(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("record number {i:010}\n"))
        .collect()
}

/// A journal of `n` numbered records in 1 KiB segments (a few dozen
/// records each), closed.
fn sound_journal(parent: &Path, name: &str, n: usize) -> PathBuf {
    let dir = parent.join(name);
    write_journal(&dir, numbered(0, n).as_bytes(), &["--segment-size", "1KiB"]);
    dir
}

/// `info --json` on a journal, whatever its exit status.
fn journal_info_any(dir: &Path) -> Option<Value> {
    let run = run(&[OsStr::new("info"), OsStr::new("--json"), arg(dir)]);
    serde_json::from_slice(&run.stdout).ok()
}

/// A `kekbit write --journal DIR extra...` left running with its standard
/// input open; returns once it holds the journal's lock.
fn live_journal_writer(dir: &Path, extra: &[&str]) -> Child {
    let mut child = kekbit()
        .args([OsStr::new("write"), OsStr::new("--journal"), arg(dir)])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kekbit write --journal");
    let pid = u64::from(child.id());
    wait_for("the journal's writer to hold its lock", || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("kekbit write --journal exited: {status}");
        }
        journal_info_any(dir).is_some_and(|v| v["writer_pid"] == pid)
    });
    child
}

/// The payloads `cat` prints, one per line.
fn cat_lines(dir: &Path) -> Vec<String> {
    let r = run(&[OsStr::new("cat"), arg(dir)]);
    r.assert_ok("cat");
    r.stdout_text().lines().map(str::to_owned).collect()
}

fn copy_folder(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap();
    set_mode(to, 0o700);
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        fs::copy(entry.path(), &target).unwrap();
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn journal_write_then_cat_info_verify_across_rolls() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("events");
    let input = numbered(0, 2000);
    // 2,000 records of 24 bytes (32 in a segment with framing) roll 1 KiB
    // segments about every 31 records.
    write_journal(&dir, input.as_bytes(), &["--segment-size", "1KiB"]);
    let expected: Vec<String> = input.lines().map(str::to_owned).collect();
    assert_eq!(cat_lines(&dir), expected);

    // Positions are journal positions, increasing across segments.
    let records = cat_json(&dir);
    assert_eq!(records.len(), 2000);
    assert_eq!(records[0].0, 0);
    assert!(
        records.windows(2).all(|w| w[1].0 == w[0].0 + 32),
        "one record each 32 bytes"
    );

    let info = info_json(&dir);
    assert_eq!(info["kind"], "journal");
    assert_eq!(info["state"], "closed");
    assert_eq!(info["writer_pid"], Value::Null);
    assert_eq!(info["first_position"], 0);
    let segments = info["segments"].as_array().unwrap();
    assert!(segments.len() > 60, "{} segments", segments.len());
    assert_eq!(info["segment_count"], segments.len());
    // Each segment starts where the one before it was sealed.
    for pair in segments.windows(2) {
        assert_eq!(pair[0]["state"], "closed");
        assert_eq!(pair[0]["end_position"], pair[1]["base"]);
        assert_eq!(pair[0]["capacity_bytes"], 1024);
        assert_eq!(pair[0]["checksums"], true);
        assert_eq!(
            pair[1]["sequence"],
            pair[0]["sequence"].as_u64().unwrap() + 1
        );
    }
    let last = segments.last().unwrap();
    assert_eq!(info["end_position"], last["end_position"]);
    assert_eq!(info["durable_position"], info["end_position"]);
    assert!(info["end_position"].as_u64().unwrap() >= 2000 * 32);
    assert_eq!(info["problems"], Value::Array(Vec::new()));

    let text = run(&[OsStr::new("info"), arg(&dir)]);
    text.assert_ok("info");
    let text = text.stdout_text();
    for expected in [
        "kind            journal of",
        "state           closed",
        "first position  0",
        "00000000000000000000.kekbit",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }

    let verify = run(&[OsStr::new("verify"), arg(&dir)]);
    verify.assert_ok("verify");
    let line = verify.stdout_text();
    assert!(
        line.contains(&format!(
            "ok: journal {:#x}, {} segments, 2000 records, 48000 payload bytes",
            info["journal_id"].as_u64().unwrap(),
            segments.len()
        )) && line.contains("closed; every checksum matches"),
        "{line}"
    );

    // --from takes a journal position, in any segment.
    let (position, _) = records[1234];
    let from = run(&[
        OsStr::new("cat"),
        OsStr::new("--from"),
        OsStr::new(&position.to_string()),
        arg(&dir),
    ]);
    from.assert_ok("cat --from");
    assert_eq!(
        from.stdout_text().lines().collect::<Vec<_>>(),
        expected[1234..]
    );
    for (bad, cause) in [
        (position + 8, "no record starts at position"),
        (1 << 40, "past the journal's end"),
    ] {
        let r = run(&[
            OsStr::new("cat"),
            OsStr::new("--from"),
            OsStr::new(&bad.to_string()),
            arg(&dir),
        ]);
        let line = r.assert_error(1, "cat --from a bad position");
        assert!(
            line.contains(&format!("--from {bad}: ")) && line.contains(cause),
            "{line}"
        );
    }

    // Writing again continues the journal, in a new segment of the size
    // its segments have.
    write_journal(&dir, numbered(2000, 10).as_bytes(), &[]);
    let all = cat_lines(&dir);
    assert_eq!(all.len(), 2010);
    assert_eq!(all[..2000], expected[..]);
    assert_eq!(all[2009], "record number 0000002009");
    let again = info_json(&dir);
    let again = again["segments"].as_array().unwrap();
    assert_eq!(again.len(), segments.len() + 1);
    assert_eq!(again.last().unwrap()["capacity_bytes"], 1024);
    run(&[OsStr::new("verify"), arg(&dir)]).assert_ok("verify after a second write");
}

#[test]
#[cfg_attr(miri, ignore)]
fn journal_len32_framing_and_no_checksums() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("binary");
    let mut rng = Rng(0x10_6a1);
    let mut payloads: Vec<Vec<u8>> = vec![Vec::new(), vec![b'\n'; 3]];
    for _ in 0..200 {
        let len = rng.below(300) as usize;
        payloads.push(rng.bytes(len));
    }
    // The largest record a 1 KiB segment takes, exactly.
    payloads.push(rng.bytes(1008));
    let mut input = Vec::new();
    for p in &payloads {
        input.extend_from_slice(&(p.len() as u32).to_le_bytes());
        input.extend_from_slice(p);
    }
    write_journal(
        &dir,
        &input,
        &[
            "--framing",
            "len32",
            "--segment-size",
            "1KiB",
            "--no-checksums",
        ],
    );
    let got: Vec<Vec<u8>> = cat_json(&dir).into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, payloads);
    let info = info_json(&dir);
    for segment in info["segments"].as_array().unwrap() {
        assert_eq!(segment["checksums"], false, "{segment}");
    }
    let verify = run(&[OsStr::new("verify"), arg(&dir)]);
    verify.assert_ok("verify");
    assert!(verify.stdout_text().contains("no checksums"), "{verify:?}");

    // One byte more than a segment takes: refused, saying which record,
    // after the records before it.
    let over = parent.path().join("over");
    let mut input = Vec::new();
    for p in [&b"fits"[..], &[7u8; 1009][..]] {
        input.extend_from_slice(&(p.len() as u32).to_le_bytes());
        input.extend_from_slice(p);
    }
    let r = run_with_input(
        &[
            OsStr::new("write"),
            OsStr::new("--journal"),
            arg(&over),
            OsStr::new("--framing"),
            OsStr::new("len32"),
            OsStr::new("--segment-size"),
            OsStr::new("1KiB"),
        ],
        Some(&input),
    );
    let line = r.assert_error(1, "a frame over the maximum");
    assert!(line.contains("maximum record of 1008"), "{line}");
    assert_eq!(cat_lines(&over), ["fits"]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn journal_write_options_and_refusals() {
    let parent = tempfile::tempdir().unwrap();
    let p = parent.path();

    // --max-record: a longer line is refused, naming the record.
    let small = p.join("small");
    let r = run_with_input(
        &[
            OsStr::new("write"),
            OsStr::new("--journal"),
            arg(&small),
            OsStr::new("--max-record"),
            OsStr::new("10"),
            OsStr::new("--segment-size"),
            OsStr::new("4KiB"),
        ],
        Some(b"short\nthis one is too long\n"),
    );
    let line = r.assert_error(1, "a line over --max-record");
    assert!(line.contains("maximum record of 10 bytes"), "{line}");
    assert_eq!(cat_lines(&small), ["short"]);

    // Options that cannot make a segment, or do not fit a journal, are
    // usage errors (status 2).
    for extra in [
        &["--segment-size", "1001"][..],
        &["--segment-size", "8"],
        &["--segment-size", "8GiB"],
        &["--segment-size", "4KiB", "--max-record", "4081"],
        &["--capacity", "4KiB"],
        &["--channel-id", "7"],
    ] {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("write"),
            OsStr::new("--journal"),
            OsStr::new("never-made"),
        ];
        args.extend(extra.iter().map(OsStr::new));
        let r = run_with_input(&args, Some(b"x\n"));
        r.assert_error(2, &format!("{extra:?}"));
    }
    assert!(!Path::new("never-made").exists());
    let r = run_with_input(
        &[
            OsStr::new("write"),
            arg(&p.join("c.kekbit")),
            OsStr::new("--sync"),
            OsStr::new("interval:10ms"),
        ],
        Some(b"x\n"),
    );
    let line = r.assert_error(2, "interval on a channel");
    assert!(line.contains("for journals"), "{line}");

    // A missing parent folder needs --parents; a file, or a folder of
    // other things, is never turned into a journal.
    let deep = p.join("a/b/journal");
    let r = run_with_input(
        &[OsStr::new("write"), OsStr::new("--journal"), arg(&deep)],
        Some(b"x\n"),
    );
    let line = r.assert_error(1, "no parent folder");
    assert!(line.contains("pass --parents"), "{line}");
    write_journal(&deep, b"x\n", &["--parents", "--segment-size", "4KiB"]);
    assert_eq!(cat_lines(&deep), ["x"]);
    let file = p.join("plain-file");
    fs::write(&file, b"data").unwrap();
    let r = run_with_input(
        &[OsStr::new("write"), OsStr::new("--journal"), arg(&file)],
        Some(b"x\n"),
    );
    let line = r.assert_error(1, "a file");
    assert!(line.contains("is a file, not a folder"), "{line}");
    let busy = p.join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let r = run_with_input(
        &[OsStr::new("write"), OsStr::new("--journal"), arg(&busy)],
        Some(b"x\n"),
    );
    let line = r.assert_error(1, "a folder of other files");
    assert!(line.contains("no journal"), "{line}");
    assert_eq!(fs::read_dir(&busy).unwrap().count(), 1);

    // Retention: at most 3 segments are kept; readers start at the oldest.
    let kept = p.join("kept");
    write_journal(
        &kept,
        numbered(0, 500).as_bytes(),
        &["--segment-size", "1KiB", "--retain-segments", "3"],
    );
    let info = info_json(&kept);
    assert_eq!(info["segment_count"], 3, "{info}");
    let first = info["first_position"].as_u64().unwrap();
    assert!(first > 0);
    let records = cat_json(&kept);
    assert_eq!(records[0].0, first);
    assert_eq!(records.last().unwrap().1, b"record number 0000000499");
    run(&[OsStr::new("verify"), arg(&kept)]).assert_ok("verify after retention");
    // A position retention deleted is refused with the oldest kept.
    let r = run(&[
        OsStr::new("cat"),
        OsStr::new("--from"),
        OsStr::new("0"),
        arg(&kept),
    ]);
    let line = r.assert_error(1, "cat --from a deleted position");
    assert!(
        line.contains(&format!("the oldest retained is {first}")),
        "{line}"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn journal_sync_policies_move_the_durable_position() {
    let parent = tempfile::tempdir().unwrap();
    let durable_and_end = |dir: &Path| {
        let info = journal_info_any(dir).expect("info --json");
        (
            info["durable_position"].as_u64(),
            info["end_position"].as_u64().unwrap(),
        )
    };
    let send = |child: &mut Child, lines: &str| {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(lines.as_bytes()).unwrap();
        stdin.flush().unwrap();
    };
    for (policy, expect) in [
        ("none", "behind"),
        ("close", "behind"),
        ("record", "at end"),
        ("records:3", "every 3"),
        ("interval:20ms", "at end"),
        ("bytes:64", "at end"),
    ] {
        let dir = parent.path().join(policy.replace(':', "-"));
        let mut writer = live_journal_writer(&dir, &["--segment-size", "4KiB", "--sync", policy]);
        send(&mut writer, &numbered(0, 4));
        // Every record is visible to readers at once, durable or not.
        wait_for("4 records", || durable_and_end(&dir).1 == 4 * 32);
        match expect {
            // Nothing synced since the writer opened the journal.
            "behind" => {
                thread::sleep(Duration::from_millis(100));
                assert_eq!(durable_and_end(&dir), (Some(0), 128), "{policy}");
            }
            // In line after the 3rd record; the 4th waits for the 6th.
            "every 3" => assert_eq!(durable_and_end(&dir), (Some(96), 128), "{policy}"),
            _ => wait_for(policy, || durable_and_end(&dir) == (Some(128), 128)),
        }
        drop(writer.stdin.take());
        assert!(writer.wait().unwrap().success(), "{policy}");
        // Closing syncs, whatever the policy.
        assert_eq!(durable_and_end(&dir), (Some(128), 128), "{policy}");
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_second_journal_writer_is_refused_with_the_holders_pid() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("one-writer");
    let mut first = live_journal_writer(&dir, &["--segment-size", "4KiB"]);
    let pid = first.id();
    let second = run_with_input(
        &[OsStr::new("write"), OsStr::new("--journal"), arg(&dir)],
        Some(b"intruder\n"),
    );
    let line = second.assert_error(1, "second writer");
    assert_eq!(
        line,
        format!(
            "kekbit: error: {}: the journal has a writer already (process {pid} holds its lock)",
            dir.display()
        )
    );
    let info = info_json(&dir);
    assert_eq!(
        (info["state"].as_str(), info["writer_pid"].as_u64()),
        (Some("open"), Some(u64::from(pid)))
    );
    let text = run(&[OsStr::new("info"), arg(&dir)]).stdout_text();
    assert!(
        text.contains(&format!("open (writer process {pid} holds its lock)")),
        "{text}"
    );
    first.stdin.as_mut().unwrap().write_all(b"mine\n").unwrap();
    drop(first.stdin.take());
    assert!(first.wait().unwrap().success());
    assert_eq!(cat_lines(&dir), ["mine"]);
    assert_eq!(info_json(&dir)["state"], "closed");
}

#[test]
#[cfg_attr(miri, ignore)]
fn journal_follow_crosses_rolls_until_closed() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("followed");
    let mut writer = live_journal_writer(&dir, &["--segment-size", "1KiB"]);
    let mut writer_in = writer.stdin.take().unwrap();
    let mut cat = kekbit()
        .args([OsStr::new("cat"), OsStr::new("--follow"), arg(&dir)])
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
    // 300 records of 32 bytes: about ten rolls. Every 25 records, wait
    // until cat has printed them all, in order.
    let mut seen = 0;
    for i in 0..300 {
        writer_in
            .write_all(format!("record number {i:010}\n").as_bytes())
            .unwrap();
        writer_in.flush().unwrap();
        if i % 25 == 24 {
            while seen <= i {
                let line = rx.recv_timeout(Duration::from_secs(10)).expect("a line");
                assert_eq!(line, format!("record number {seen:010}"));
                seen += 1;
            }
        }
    }
    drop(writer_in);
    assert!(writer.wait().unwrap().success());
    // End of input closes the journal; cat --follow then ends, status 0,
    // having printed every record once.
    let status = cat.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(seen, 300);
    assert!(
        rx.recv_timeout(Duration::from_secs(1)).is_err(),
        "no more lines"
    );
    assert!(info_json(&dir)["segment_count"].as_u64().unwrap() >= 9);
}

#[test]
#[cfg_attr(miri, ignore)]
fn journal_write_resumes_after_its_writer_is_killed() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("crashed");
    let mut writer = live_journal_writer(&dir, &["--segment-size", "1KiB", "--timeout", "30s"]);
    // A follower, started before the crash, sees one continuous sequence.
    let mut cat = kekbit()
        .args([OsStr::new("cat"), OsStr::new("--follow"), arg(&dir)])
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
    {
        let stdin = writer.stdin.as_mut().unwrap();
        stdin.write_all(numbered(0, 100).as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    for i in 0..100 {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("a line");
        assert_eq!(line, format!("record number {i:010}"));
    }
    // SIGKILL: no close, no seal, the lock released by the kernel.
    writer.kill().unwrap();
    writer.wait().unwrap();
    let info = info_json(&dir);
    assert_eq!(info["state"], "abandoned", "{info}");
    assert_eq!(info["writer_pid"], Value::Null);
    assert_eq!(info["durable_position"], Value::Null);
    let verify = run(&[OsStr::new("verify"), arg(&dir)]);
    verify.assert_ok("verify after the crash");
    assert!(
        verify.stdout_text().contains("100 records") && verify.stdout_text().contains("no writer"),
        "{verify:?}"
    );
    assert_eq!(cat_lines(&dir).len(), 100);

    // The next writer recovers the journal and goes on after the last record.
    write_journal(
        &dir,
        numbered(100, 50).as_bytes(),
        &["--segment-size", "1KiB"],
    );
    let expected: Vec<String> = numbered(0, 150).lines().map(str::to_owned).collect();
    assert_eq!(cat_lines(&dir), expected);
    for i in 100..150 {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a line after the crash");
        assert_eq!(line, format!("record number {i:010}"));
    }
    // The second writer closed the journal: the follower ends, with nothing
    // seen twice.
    let status = cat.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(rx.recv_timeout(Duration::from_secs(1)).is_err());
    let verify = run(&[OsStr::new("verify"), arg(&dir)]);
    verify.assert_ok("verify after recovery");
    assert!(
        verify.stdout_text().contains("150 records") && verify.stdout_text().contains("closed"),
        "{verify:?}"
    );
    let records = cat_json(&dir);
    assert!(records.windows(2).all(|w| w[1].0 > w[0].0));
}

/// Runs every read command on `dir`: none panics, each exits 0 or 1 with
/// one error line. Returns verify's error line, if it failed.
fn read_commands_on(dir: &Path, what: &str) -> Option<String> {
    for command in [
        &["cat"][..],
        &["cat", "--format", "json"],
        &["cat", "--from", "1024"],
        &["info"],
        &["info", "--json"],
    ] {
        let mut args: Vec<&OsStr> = command.iter().map(OsStr::new).collect();
        args.push(arg(dir));
        let r = run(&args);
        let what = format!("{command:?} on {what}");
        assert_no_panic(&r.stderr, &what);
        match r.code {
            Some(0) => assert!(r.stderr.is_empty(), "{what}: {r:?}"),
            Some(1) => {
                r.assert_error(1, &what);
            }
            other => panic!("{what}: exit status {other:?}: {r:?}"),
        }
    }
    let r = run(&[OsStr::new("verify"), arg(dir)]);
    match r.code {
        Some(0) => {
            assert!(r.stderr.is_empty(), "verify on {what}: {r:?}");
            None
        }
        _ => Some(r.assert_error(1, &format!("verify on {what}")).to_owned()),
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn damaged_journals_are_named_and_never_panic() {
    let parent = tempfile::tempdir().unwrap();
    let p = parent.path();
    let sound = sound_journal(p, "sound", 200);
    let info = info_json(&sound);
    let segments = info["segments"].as_array().unwrap().clone();
    assert!(segments.len() >= 6);
    let seg_path = |dir: &Path, i: usize| {
        dir.join(
            Path::new(segments[i]["path"].as_str().unwrap())
                .file_name()
                .unwrap(),
        )
    };
    let end = info["end_position"].as_u64().unwrap();
    assert_eq!(read_commands_on(&sound, "the sound journal"), None);

    // A missing middle segment: a gap in positions.
    let gap = p.join("gap");
    copy_folder(&sound, &gap);
    fs::remove_file(seg_path(&gap, 2)).unwrap();
    let line = read_commands_on(&gap, "a missing segment").expect("verify fails");
    let missing_at = segments[2]["base"].as_u64().unwrap();
    assert!(
        line.contains(&format!("no segment starts at position {missing_at}"))
            && line.contains("a segment is missing"),
        "{line}"
    );
    let r = run(&[OsStr::new("info"), OsStr::new("--json"), arg(&gap)]);
    r.assert_error(1, "info on a gap");
    let value: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(value["state"], "damaged");
    // cat prints the records before the gap, then names it.
    let r = run(&[OsStr::new("cat"), arg(&gap)]);
    let line = r.assert_error(1, "cat across a gap");
    assert!(line.contains("missing"), "{line}");
    let before = segments[1]["end_position"].as_u64().unwrap() / 32;
    assert_eq!(r.stdout_text().lines().count() as u64, before);

    // A segment of another journal, at the right place: a journal written
    // from the same input has the same bases, and another id.
    let other = sound_journal(p, "other", 200);
    let foreign = p.join("foreign");
    copy_folder(&sound, &foreign);
    fs::copy(seg_path(&other, 3), seg_path(&foreign, 3)).unwrap();
    let line = read_commands_on(&foreign, "a foreign segment").expect("verify fails");
    assert!(
        line.contains(&segments[3]["path"].as_str().unwrap()[sound.as_os_str().len()..])
            && line.contains("not of this journal"),
        "{line}"
    );
    let r = run(&[OsStr::new("cat"), arg(&foreign)]);
    let line = r.assert_error(1, "cat into a foreign segment");
    assert!(line.contains("not of this journal"), "{line}");

    // A garbage file named as the next segment.
    let garbage = p.join("garbage");
    copy_folder(&sound, &garbage);
    let name = format!("{end:020}.kekbit");
    write_private(&garbage.join(&name), Rng(3).bytes(1216)).unwrap();
    let line = read_commands_on(&garbage, "a garbage segment").expect("verify fails");
    assert!(
        line.contains(&name) && line.contains("bad channel header"),
        "{line}"
    );
    let r = run(&[OsStr::new("cat"), arg(&garbage)]);
    let line = r.assert_error(1, "cat into a garbage segment");
    assert!(line.contains(&name), "{line}");
    assert_eq!(r.stdout_text().lines().count(), 200);

    // Garbage under any other name is ignored, and said so.
    let notes = p.join("notes");
    copy_folder(&sound, &notes);
    write_private(&notes.join("notes.txt"), b"not a segment").unwrap();
    write_private(&notes.join("123.kekbit"), Rng(4).bytes(300)).unwrap();
    assert_eq!(read_commands_on(&notes, "other files"), None);
    let verify = run(&[OsStr::new("verify"), arg(&notes)]).stdout_text();
    assert!(
        verify.contains("2 other files ignored (123.kekbit, notes.txt)"),
        "{verify}"
    );
    assert_eq!(
        info_json(&notes)["other_files"].as_array().unwrap().len(),
        2
    );

    // A torn record: its segment, journal position and offsets are named.
    let torn = p.join("torn");
    copy_folder(&sound, &torn);
    let victim = seg_path(&torn, 4);
    let mut bytes = fs::read(&victim).unwrap();
    let at = HEADER_LEN + 32 + 8 + 3; // the second record's payload
    bytes[at] ^= 0x20;
    write_private(&victim, bytes).unwrap();
    let line = read_commands_on(&torn, "a torn record").expect("verify fails");
    let position = segments[4]["base"].as_u64().unwrap() + 32;
    assert!(
        line.contains(&format!(
            "at journal position {position}: at record offset 32"
        )) && line.contains("checksum mismatch")
            && line.contains(&segments[4]["path"].as_str().unwrap()[sound.as_os_str().len()..]),
        "{line}"
    );

    // A segment cut short, one zeroed, one unsealed but followed.
    let cut = p.join("cut");
    copy_folder(&sound, &cut);
    let victim = seg_path(&cut, 1);
    let len = fs::metadata(&victim).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let line = read_commands_on(&cut, "a truncated segment").expect("verify fails");
    assert!(line.contains("truncated"), "{line}");
    let zeroed = p.join("zeroed");
    copy_folder(&sound, &zeroed);
    write_private(&seg_path(&zeroed, 0), vec![0u8; 1216]).unwrap();
    read_commands_on(&zeroed, "a zeroed segment").expect("verify fails");
    let unsealed = p.join("unsealed");
    copy_folder(&sound, &unsealed);
    let victim = seg_path(&unsealed, 2);
    let mut bytes = fs::read(&victim).unwrap();
    let seal = HEADER_LEN
        + (segments[2]["end_position"].as_u64().unwrap() - segments[2]["base"].as_u64().unwrap())
            as usize;
    bytes[seal..seal + 4].fill(0);
    write_private(&victim, bytes).unwrap();
    let line = read_commands_on(&unsealed, "an unsealed segment").expect("verify fails");
    assert!(line.contains("not sealed, yet"), "{line}");

    // Random damage anywhere in any segment: never a panic.
    let mut rng = Rng(0x7a11);
    for round in 0..12 {
        let copy = p.join(format!("random-{round}"));
        copy_folder(&sound, &copy);
        let victim = seg_path(&copy, rng.below(segments.len() as u64) as usize);
        let mut bytes = fs::read(&victim).unwrap();
        for _ in 0..3 {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] = rng.next() as u8;
        }
        write_private(&victim, bytes).unwrap();
        read_commands_on(&copy, &format!("random damage {round}"));
    }

    // Opening the gapped journal for writing cuts it at the gap, says so,
    // and goes on: it verifies again.
    let r = run_with_input(
        &[
            OsStr::new("write"),
            OsStr::new("--journal"),
            arg(&gap),
            OsStr::new("--segment-size"),
            OsStr::new("1KiB"),
        ],
        Some(b"after recovery\n"),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr.starts_with("kekbit: ") && r.stderr.contains("set aside"),
        "{r:?}"
    );
    let verify = run(&[OsStr::new("verify"), arg(&gap)]);
    verify.assert_ok("verify after recovery");
    assert!(
        verify.stdout_text().contains("set aside by recovery"),
        "{verify:?}"
    );
    let lines = cat_lines(&gap);
    assert_eq!(lines.len() as u64, before + 1);
    assert_eq!(lines.last().map(String::as_str), Some("after recovery"));
}

#[test]
#[cfg_attr(miri, ignore)]
fn journal_folders_others_may_write_need_shared() {
    let parent = tempfile::tempdir().unwrap();
    let dir = sound_journal(parent.path(), "group", 50);
    set_mode(&dir, 0o770);
    for command in ["cat", "info", "verify"] {
        let r = run(&[OsStr::new(command), arg(&dir)]);
        let line = r.assert_error(1, command);
        assert!(
            line.contains("refused: mode 0770") && line.contains("--shared"),
            "{line}"
        );
        let r = run(&[OsStr::new(command), OsStr::new("--shared"), arg(&dir)]);
        r.assert_ok(&format!("{command} --shared"));
    }
    // A link to a journal is refused even with --shared.
    set_mode(&dir, 0o700);
    let link = parent.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    for command in ["cat", "info", "verify"] {
        let r = run(&[OsStr::new(command), OsStr::new("--shared"), arg(&link)]);
        let line = r.assert_error(1, command);
        assert!(line.contains("symbolic link"), "{line}");
    }
}
