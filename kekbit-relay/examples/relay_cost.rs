//! Where the relay's time goes: a journal of records pushed alone, then
//! pulled alone, against a nats-server started for the run.
//!
//! ```sh
//! cargo run --release -p kekbit-relay --example relay_cost -- [RECORDS] [BYTES] [MESSAGE_BYTES]
//! ```

use std::time::Instant;

use kekbit_relay::{Pull, PullOptions, Push, PushOptions};
use kekbit_std::journal::JournalOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let records = args.next().transpose()?.unwrap_or(200_000) as u64;
    let len = args.next().transpose()?.unwrap_or(1024);
    let message = args.next().transpose()?.unwrap_or(256 << 10);
    let server = nats_fixture::NatsServer::start();
    let dir = tempfile::tempdir_in("/dev/shm")?;
    let (source, replica) = (dir.path().join("source"), dir.path().join("replica"));
    let mut writer = JournalOptions::new()
        .max_record_len(64 << 10)
        .open_writer(&source)?;
    let body = vec![7u8; len];
    for _ in 0..records {
        writer.append(&body)?;
    }
    writer.close()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t = Instant::now();
    let pushed = rt.block_on(
        Push::new(
            PushOptions::new(server.url(), "COST", &source)
                .until_closed(true)
                .max_message_bytes(message),
        )
        .run(),
    )?;
    let push_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let pulled = rt.block_on(
        Pull::new(PullOptions::new(server.url(), "COST", &replica).until_closed(true)).run(),
    )?;
    let pull_s = t.elapsed().as_secs_f64();
    let mb = (records as usize * len) as f64 / 1e6;
    println!(
        "{records} records of {len} B, messages up to {message} B: push {:.0} records/s ({:.0} MB/s, {} messages), \
         pull {:.0} records/s ({:.0} MB/s)",
        pushed.records as f64 / push_s,
        mb / push_s,
        pushed.messages,
        pulled.records as f64 / pull_s,
        mb / pull_s
    );
    Ok(())
}
