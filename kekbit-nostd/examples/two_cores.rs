//! Two threads sharing one region, as two cores share SRAM: one writes
//! counter readings, the other reads them at its own pace and watches the
//! writer's heartbeat.
//!
//! Run with `cargo run -p kekbit-nostd --example two_cores`.

use std::time::Instant;

use kekbit_nostd::{
    AlignedBuffer, ChannelConfig, Clock, ReadError, Reader, SliceRegion, Status, TickUnit, Writer,
};

/// Microseconds since the program started: both "cores" share it.
struct Micros(Instant);
impl Clock for Micros {
    fn now(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let clock = Micros(Instant::now());
    let mut buffer = Box::new(AlignedBuffer::<{ 1 << 20 }>::new());
    let base = buffer.as_mut_slice().as_mut_ptr();
    // SAFETY: `buffer` outlives both regions (scoped threads end first); only
    // `core0` creates a writer; nothing else writes the memory.
    let (mut core0, core1) = unsafe {
        (
            SliceRegion::from_raw_parts(base, 1 << 20)?,
            SliceRegion::from_raw_parts(base, 1 << 20)?,
        )
    };
    let config = ChannelConfig::new(7)
        .timeout(50_000, TickUnit::Micros)
        .checksums(true);
    let mut writer = Writer::create(&mut core0, &config)?;

    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0u64..10_000 {
                writer
                    .write(&i.to_le_bytes())
                    .expect("the channel has room");
                if i % 1000 == 0 {
                    writer.heartbeat(clock.now());
                }
            }
            writer.close();
        });
        s.spawn(|| {
            let mut reader = Reader::open(&core1).expect("core 0 created the channel");
            let (mut count, mut sum) = (0u64, 0u64);
            loop {
                match reader.try_read() {
                    Ok(Some(record)) => {
                        sum += u64::from_le_bytes(record.try_into().expect("8-byte records"));
                        count += 1;
                    }
                    Ok(None) => {
                        if reader.status(&clock) == Status::Abandoned {
                            println!("core 0 stopped answering");
                            break;
                        }
                        std::hint::spin_loop();
                    }
                    Err(ReadError::Closed) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            println!("core 1 read {count} records, sum {sum}");
        });
    });
    Ok(())
}
