//! Replies to each request `req` sends, on a second channel, until `req`
//! closes its channel.
//!
//! ```text
//! cargo run -p kekbit-std --example rep   # terminal 1
//! cargo run -p kekbit-std --example req   # terminal 2
//! ```

use std::time::Duration;

use kekbit_nostd::{ChannelConfig, TickUnit};
use kekbit_std::{default_root, shm_writer, storage_path, try_shm_reader};

const REQUESTS: u64 = 0x5E0;
const REPLIES: u64 = 0x5E1;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::var_os("KEKBIT_ROOT").map_or_else(default_root, Into::into);
    let _ = std::fs::remove_file(storage_path(&root, REPLIES));
    let config = ChannelConfig::new(REPLIES)
        .capacity_bytes(16 << 20)
        .max_record_len(1024)
        .timeout(5_000, TickUnit::Millis);
    let mut replies = shm_writer(&root, &config)?;
    eprintln!("rep: waiting up to 60 s for req");
    let requests = try_shm_reader(&root, REQUESTS, Duration::from_secs(60))?;
    let mut reader = requests.reader()?;
    let mut served = 0u64;
    let mut reply = Vec::with_capacity(1024);
    loop {
        match reader.read_timeout(Duration::from_millis(500)) {
            Ok(Some(request)) => {
                reply.clear();
                reply.extend_from_slice(b"reply to ");
                reply.extend_from_slice(request);
                replies.write(&reply)?;
                served += 1;
            }
            // Quiet: keep our own heartbeat going, and notice a dead `req`.
            Ok(None) => {
                replies.heartbeat();
                if reader.status() == kekbit_nostd::Status::Abandoned {
                    eprintln!("rep: req abandoned its channel");
                    break;
                }
            }
            Err(e) if e.is_end() => break,
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!("rep: served {served} requests");
    replies.close()?;
    Ok(())
}
