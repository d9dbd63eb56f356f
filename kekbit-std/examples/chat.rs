//! A two-person chat: each side writes its own channel and reads the other's.
//!
//! ```text
//! cargo run -p kekbit-std --example chat -- alice bob   # terminal 1
//! cargo run -p kekbit-std --example chat -- bob alice   # terminal 2
//! ```
//!
//! Type lines to send them; Ctrl-D leaves. Each name maps to a channel id.

use std::io::BufRead;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use kekbit_nostd::{ChannelConfig, Status, TickUnit};
use kekbit_std::{ChannelReader, default_root, shm_writer, storage_path, try_shm_reader};

/// A channel id for a chat name: FNV-1a, in the chat's own id range.
fn channel_id(name: &str) -> u64 {
    let hash = name.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    (0xC4A7 << 48) | (hash & 0xFFFF_FFFF_FFFF)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [me, peer] = args.as_slice() else {
        return Err("usage: chat ME PEER".into());
    };
    let root = std::env::var_os("KEKBIT_ROOT").map_or_else(default_root, Into::into);
    let _ = std::fs::remove_file(storage_path(&root, channel_id(me)));
    let config = ChannelConfig::new(channel_id(me))
        .capacity_bytes(4 << 20)
        .max_record_len(4096)
        .timeout(3_000, TickUnit::Millis);
    let mut writer = shm_writer(&root, &config)?;
    eprintln!("chat: you are {me}; waiting up to 5 minutes for {peer}");
    let channel = try_shm_reader(&root, channel_id(peer), Duration::from_secs(300))?;
    let mut reader = channel.reader()?;
    eprintln!("chat: {peer} is here; type lines, Ctrl-D to leave");

    let (lines, input) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut peer_here = true;
    loop {
        match input.recv_timeout(Duration::from_millis(20)) {
            Ok(line) => {
                writer.write(line.as_bytes())?;
            }
            Err(RecvTimeoutError::Timeout) => writer.heartbeat(),
            Err(RecvTimeoutError::Disconnected) => {
                // Leaving: first show what the peer said meanwhile.
                if peer_here {
                    drain(&mut reader, peer)?;
                }
                break;
            }
        }
        if !peer_here {
            continue;
        }
        peer_here = drain(&mut reader, peer)?;
        if peer_here && reader.status() == Status::Abandoned {
            println!("chat: {peer} went silent (abandoned)");
            peer_here = false;
        }
    }
    writer.close()?;
    Ok(())
}

/// Prints every message the peer has written so far; `false` once the peer left.
fn drain(reader: &mut ChannelReader<'_>, peer: &str) -> Result<bool, Box<dyn std::error::Error>> {
    loop {
        match reader.try_read() {
            Ok(Some(message)) => println!("{peer}: {}", String::from_utf8_lossy(message)),
            Ok(None) => return Ok(true),
            Err(e) if e.is_end() => {
                println!("chat: {peer} left");
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
}
