//! Prints every line `echo_in` sends, until it closes the channel (or dies).
//!
//! ```text
//! cargo run -p kekbit-std --example echo_out   # terminal 1
//! cargo run -p kekbit-std --example echo_in    # terminal 2
//! ```

use std::time::Duration;

use kekbit_std::{ChannelError, default_root, try_shm_reader};

/// The channel both echo examples use.
const ECHO_CHANNEL: u64 = 0xEC40;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::var_os("KEKBIT_ROOT").map_or_else(default_root, Into::into);
    eprintln!("echo_out: waiting up to 60 s for echo_in");
    let channel = try_shm_reader(&root, ECHO_CHANNEL, Duration::from_secs(60))?;
    eprintln!("echo_out: reading {}", channel.path().display());
    let mut reader = channel.reader()?;
    for record in reader.blocking() {
        match record {
            Ok(line) => println!("{}", String::from_utf8_lossy(line)),
            Err(e @ ChannelError::Abandoned { .. }) => {
                eprintln!("echo_out: {e}");
                std::process::exit(1);
            }
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!("echo_out: echo_in closed the channel");
    Ok(())
}
