//! A channel in a static buffer, as firmware would keep one: a writer
//! appends sensor samples with a sequence number, a reader drains them.
//!
//! Run with `cargo run -p kekbit-nostd --example static_buffer`.

use kekbit_nostd::{
    AlignedBuffer, ChannelConfig, Handler, PlainHandler, ReadError, Reader, SequenceHandler,
    SliceRegion, Writer,
};

/// The channel's memory: on a microcontroller, a `static` in RAM (or a
/// section of SRAM that a linker script shares between cores).
static mut BUFFER: AlignedBuffer<2048> = AlignedBuffer::new();

fn main() -> Result<(), Box<dyn core::error::Error>> {
    // `AlignedBuffer` is `repr(C)` around its bytes: its address is theirs.
    let base = (&raw mut BUFFER).cast::<u8>();
    // SAFETY: BUFFER is 2048 bytes that live forever; this is the only
    // region over it, and only one writer is created on it.
    let mut region = unsafe { SliceRegion::from_raw_parts(base, 2048) }?;
    let mut writer = Writer::create(&mut region, &ChannelConfig::new(1).max_record_len(32))?;
    let mut reader = Reader::open(writer.shared_region())?;

    let mut stamp = SequenceHandler::new(0).chain(PlainHandler);
    for sample in [21.5f32, 21.7, 22.0, 21.9] {
        writer.write_with(&mut stamp, &sample.to_le_bytes())?;
    }
    writer.close();

    loop {
        match reader.try_read() {
            Ok(Some(record)) => {
                let (seq, body) = SequenceHandler::split(record).ok_or("short record")?;
                let value = f32::from_le_bytes(body.try_into()?);
                println!("sample #{seq}: {value:.1} °C");
            }
            Ok(None) => continue,
            Err(ReadError::Closed) => break,
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "{} bytes used of {}",
        reader.position(),
        reader.header().capacity_bytes
    );
    Ok(())
}
