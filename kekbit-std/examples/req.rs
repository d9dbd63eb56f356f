//! Sends requests to `rep` and waits for each reply; prints the round trip.
//!
//! ```text
//! cargo run -p kekbit-std --example rep                # terminal 1
//! cargo run -p kekbit-std --example req [-- COUNT]     # terminal 2
//! ```

use std::time::{Duration, Instant};

use kekbit_nostd::{ChannelConfig, TickUnit};
use kekbit_std::{WaitStrategy, default_root, shm_writer, storage_path, try_shm_reader};

const REQUESTS: u64 = 0x5E0;
const REPLIES: u64 = 0x5E1;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 10,
    };
    let root = std::env::var_os("KEKBIT_ROOT").map_or_else(default_root, Into::into);
    let _ = std::fs::remove_file(storage_path(&root, REQUESTS));
    let config = ChannelConfig::new(REQUESTS)
        .capacity_bytes(16 << 20)
        .max_record_len(1024)
        .timeout(5_000, TickUnit::Millis);
    let mut requests = shm_writer(&root, &config)?;
    eprintln!("req: waiting up to 60 s for rep");
    let replies = try_shm_reader(&root, REPLIES, Duration::from_secs(60))?;
    // Latency matters more than a core here: spin while waiting for replies.
    let mut reader = replies.reader()?.with_wait_strategy(WaitStrategy::BusySpin);
    let mut round_trips = Vec::with_capacity(count as usize);
    for i in 0..count {
        let request = format!("request {i}");
        let sent = Instant::now();
        requests.write(request.as_bytes())?;
        let Some(reply) = reader.read_timeout(Duration::from_secs(5))? else {
            return Err(format!("no reply to {request:?} within 5 s").into());
        };
        round_trips.push(sent.elapsed());
        if count <= 20 {
            println!("{}", String::from_utf8_lossy(reply));
        }
    }
    requests.close()?;
    round_trips.sort();
    if let (Some(min), Some(max)) = (round_trips.first(), round_trips.last()) {
        let median = round_trips[round_trips.len() / 2];
        println!("{count} round trips: min {min:?}, median {median:?}, max {max:?}");
    }
    Ok(())
}
