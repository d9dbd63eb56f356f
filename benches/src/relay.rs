//! The `relay` workload: kekbit-relay against the raw `async-nats` client,
//! on the same nats-server (started here, one per repetition).
//!
//! - Push throughput: a source journal of `n` records is pushed and pulled
//!   at once; the clock stops when the replica holds every record ("source
//!   to replica complete"). The anchor publishes the same records to a
//!   JetStream stream, one record per message, 256 in flight, and stops at
//!   the last ack.
//! - Latency at 1,000 records/s: kekbit-relay from the source append to the
//!   record being readable in the replica journal; the anchor from a
//!   JetStream publish to its receipt by a pull consumer.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use kekbit_relay::{IdleStrategy, Pull, PullOptions, Push, PushOptions};
use kekbit_std::journal::{JournalOptions, JournalReader, Start};
use nats_fixture::NatsServer;

use crate::{Res, fail};

/// In-flight publishes of the raw anchor (the measurement).
pub const RAW_IN_FLIGHT: usize = 256;

fn runtime() -> Res<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// CLOCK_MONOTONIC in nanoseconds (shared by every thread).
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; len];
    if len >= 8 {
        v[..8].copy_from_slice(&i.to_le_bytes());
    }
    v
}

/// Raw anchor: `n` messages of `len` bytes published with `RAW_IN_FLIGHT`
/// acks outstanding; records/s to the last ack.
pub fn raw_publish(server: &NatsServer, stream: &str, n: u64, len: usize) -> Res<f64> {
    let rt = runtime()?;
    rt.block_on(async {
        let client = async_nats::connect(server.url()).await?;
        let js = async_nats::jetstream::ContextBuilder::new()
            .max_ack_inflight(RAW_IN_FLIGHT + 8)
            .build(client);
        let subject = format!("raw.{stream}");
        js.create_stream(async_nats::jetstream::stream::Config {
            name: stream.to_string(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await?;
        let body = bytes::Bytes::from(payload(7, len));
        let started = Instant::now();
        let mut window = VecDeque::new();
        for _ in 0..n {
            if window.len() == RAW_IN_FLIGHT {
                let ack: async_nats::jetstream::context::PublishAckFuture =
                    window.pop_front().ok_or_else(|| fail("empty window"))?;
                ack.await?;
            }
            window.push_back(js.publish(subject.clone(), body.clone()).await?);
        }
        for ack in window {
            ack.await?;
        }
        Ok(n as f64 / started.elapsed().as_secs_f64())
    })
}

/// kekbit-relay: `n` records of `len` bytes from a fresh source journal to
/// a complete replica; records/s.
pub fn relay_throughput(
    server: &NatsServer,
    dir: &Path,
    stream: &str,
    n: u64,
    len: usize,
) -> Res<f64> {
    let source = dir.join(format!("{stream}-source"));
    let replica = dir.join(format!("{stream}-replica"));
    let mut writer = JournalOptions::new()
        .segment_bytes(64 << 20)
        .max_record_len(64 << 10)
        .open_writer(&source)?;
    for i in 0..n {
        writer.append(&payload(i, len))?;
    }
    writer.close()?;
    let rt = runtime()?;
    let url = server.url();
    let rate = rt.block_on(async {
        let started = Instant::now();
        let push = tokio::spawn(
            Push::new(PushOptions::new(&url, stream, &source).until_closed(true)).run(),
        );
        let pull = tokio::spawn(
            Pull::new(PullOptions::new(&url, stream, &replica).until_closed(true)).run(),
        );
        let pulled = pull.await??;
        let elapsed = started.elapsed();
        push.await??;
        if pulled.records != n {
            return Err(fail(format!(
                "the replica got {} of {n} records",
                pulled.records
            )));
        }
        Ok::<_, crate::BenchError>(n as f64 / elapsed.as_secs_f64())
    })?;
    let _ = std::fs::remove_dir_all(&source);
    let _ = std::fs::remove_dir_all(&replica);
    Ok(rate)
}

/// Raw anchor latency: JetStream publish to receipt by a pull consumer, at
/// `rate` messages/s, `samples` of them.
pub fn raw_latency(
    server: &NatsServer,
    stream: &str,
    rate: u64,
    samples: u64,
) -> Res<Histogram<u64>> {
    let rt = runtime()?;
    rt.block_on(async {
        let client = async_nats::connect(server.url()).await?;
        let js = async_nats::jetstream::new(client);
        let subject = format!("lat.{stream}");
        let s = js
            .create_stream(async_nats::jetstream::stream::Config {
                name: stream.to_string(),
                subjects: vec![subject.clone()],
                ..Default::default()
            })
            .await?;
        let consumer = s
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("lat".into()),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let publisher = {
            let js = js.clone();
            tokio::spawn(async move {
                let period = Duration::from_nanos(1_000_000_000 / rate);
                let mut next = tokio::time::Instant::now();
                for i in 0..samples {
                    next += period;
                    tokio::time::sleep_until(next).await;
                    let mut body = payload(i, 64);
                    body[8..16].copy_from_slice(&now_ns().to_le_bytes());
                    let ack = js.publish(subject.clone(), body.into()).await?;
                    tokio::spawn(async move { ack.await });
                }
                Ok::<_, async_nats::Error>(())
            })
        };
        let mut h = Histogram::<u64>::new(3)?;
        for _ in 0..samples {
            let m = messages
                .next()
                .await
                .ok_or_else(|| fail("consumer ended"))??;
            let sent = u64::from_le_bytes(m.payload[8..16].try_into()?);
            h.record(now_ns().saturating_sub(sent))?;
        }
        publisher.await?.map_err(|e| fail(e.to_string()))?;
        Ok(h)
    })
}

/// kekbit-relay latency: source append to readable in the replica, at
/// `rate` records/s, `samples` of them. The push polls with
/// `IdleStrategy::Yield`; so does the replica's reader.
pub fn relay_latency(
    server: &NatsServer,
    dir: &Path,
    stream: &str,
    rate: u64,
    samples: u64,
) -> Res<Histogram<u64>> {
    let source = dir.join(format!("{stream}-source"));
    let replica = dir.join(format!("{stream}-replica"));
    let mut writer = JournalOptions::new()
        .segment_bytes(64 << 20)
        .max_record_len(1024)
        .open_writer(&source)?;
    // A first record creates the replica before the clock matters.
    writer.append(&payload(u64::MAX, 64))?;
    let rt = runtime()?;
    let url = server.url();
    let stop = Arc::new(tokio::sync::Notify::new());
    let (push, pull) = {
        let _guard = rt.enter();
        let s1 = stop.clone();
        let s2 = stop.clone();
        let push = rt.spawn(
            Push::new(PushOptions::new(&url, stream, &source).idle(IdleStrategy::Yield))
                .run_until(async move { s1.notified().await }),
        );
        let pull = rt.spawn(
            Pull::new(PullOptions::new(&url, stream, &replica))
                .run_until(async move { s2.notified().await }),
        );
        (push, pull)
    };
    // Wait for the replica to exist and hold the first record.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reader = loop {
        if let Ok(mut r) = JournalReader::open_at(&replica, Start::Beginning)
            && let Ok(Some(_)) = r.try_read()
        {
            break r;
        }
        if Instant::now() > deadline {
            return Err(fail("the replica did not appear"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let done = Arc::new(AtomicBool::new(false));
    let writing = {
        let done = done.clone();
        std::thread::spawn(move || -> Res<()> {
            let period = Duration::from_nanos(1_000_000_000 / rate);
            let start = Instant::now();
            for i in 0..samples {
                let due = period * (i as u32 + 1);
                while start.elapsed() < due {
                    let left = due.saturating_sub(start.elapsed());
                    if left > Duration::from_micros(200) {
                        std::thread::sleep(left - Duration::from_micros(100));
                    } else {
                        std::hint::spin_loop();
                    }
                }
                let mut body = payload(i, 64);
                body[8..16].copy_from_slice(&now_ns().to_le_bytes());
                writer.append(&body)?;
            }
            done.store(true, Ordering::Relaxed);
            writer.close()?;
            Ok(())
        })
    };
    let mut h = Histogram::<u64>::new(3)?;
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(samples / rate.max(1) + 30);
    while got < samples {
        match reader.try_read() {
            Ok(Some(r)) => {
                let sent = u64::from_le_bytes(r.payload[8..16].try_into()?);
                h.record(now_ns().saturating_sub(sent))?;
                got += 1;
            }
            Ok(None) => std::thread::yield_now(),
            Err(e) => return Err(fail(e.to_string())),
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "only {got} of {samples} records reached the replica"
            )));
        }
    }
    writing.join().map_err(|_| fail("writer panicked"))??;
    stop.notify_waiters();
    stop.notify_one();
    rt.block_on(async {
        let _ = push.await;
        let _ = pull.await;
    });
    let _ = std::fs::remove_dir_all(&source);
    let _ = std::fs::remove_dir_all(&replica);
    Ok(h)
}
