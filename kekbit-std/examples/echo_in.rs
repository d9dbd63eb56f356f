//! Type lines; `echo_out` in another terminal prints them. Ctrl-D closes the
//! channel, and `echo_out` exits.
//!
//! ```text
//! cargo run -p kekbit-std --example echo_out   # terminal 1
//! cargo run -p kekbit-std --example echo_in    # terminal 2
//! ```
//!
//! The channel lives under `$KEKBIT_ROOT`, else `kekbit_std::default_root()`.

use std::io::BufRead;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use kekbit_nostd::{ChannelConfig, TickUnit};
use kekbit_std::{default_root, shm_writer, storage_path};

/// The channel both echo examples use.
const ECHO_CHANNEL: u64 = 0xEC40;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::var_os("KEKBIT_ROOT").map_or_else(default_root, Into::into);
    // An example starts afresh: remove the channel a previous run left.
    let _ = std::fs::remove_file(storage_path(&root, ECHO_CHANNEL));
    let config = ChannelConfig::new(ECHO_CHANNEL)
        .capacity_bytes(1 << 20)
        .max_record_len(4096)
        .timeout(2_000, TickUnit::Millis);
    let mut writer = shm_writer(&root, &config)?;
    eprintln!(
        "echo_in: writing to {}; type lines, Ctrl-D to end",
        writer.path().display()
    );

    // stdin blocks, so a thread reads it while this one keeps the writer's
    // heartbeat going: a silent writer would be reported abandoned.
    let (lines, input) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match input.recv_timeout(Duration::from_millis(250)) {
            Ok(line) => {
                writer.write(line.as_bytes())?;
            }
            Err(RecvTimeoutError::Timeout) => writer.heartbeat(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    eprintln!("echo_in: {} lines sent, closing", writer.records_written());
    writer.close()?;
    Ok(())
}
