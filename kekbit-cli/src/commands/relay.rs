//! `kekbit relay push|pull`: a thin shell over `kekbit_relay`. It runs the
//! library until it finishes, Ctrl-C or SIGTERM; shows a live line on a
//! terminal; prints the statistics (`--json`: one object on stdout).

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kekbit_relay::{
    EventSink, IdleStrategy, Progress, ProgressSnapshot, Pull, PullOptions, PullStats, Push,
    PushOptions, PushStats, StartAt, StorageType, StreamSettings,
};

use crate::cli::{Idle, RelayCommand, RelayPullArgs, RelayPushArgs, Storage};
use crate::error::{CliError, CliResult, stdout_error};

/// Runs `kekbit relay push` or `kekbit relay pull`.
pub fn run(command: RelayCommand) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("cannot start the async runtime: {e}")))?;
    match command {
        RelayCommand::Push(args) => runtime.block_on(push(&args)),
        RelayCommand::Pull(args) => runtime.block_on(pull(&args)),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The live line (hidden unless stderr is a terminal), and an event sink
/// that prints above it.
fn live_line() -> (ProgressBar, EventSink) {
    let bar = if io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let printer = bar.clone();
    let sink: EventSink = Arc::new(move |event| {
        printer.suspend(|| {
            let _ = writeln!(io::stderr(), "kekbit relay: {event}");
        });
    });
    (bar, sink)
}

/// Updates `bar` every 250 ms until the returned task is aborted.
fn follow(
    bar: &ProgressBar,
    progress: Progress,
    verb: &'static str,
) -> tokio::task::JoinHandle<()> {
    let bar = bar.clone();
    tokio::spawn(async move {
        let mut last = (ProgressSnapshot::default(), std::time::Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = progress.snapshot();
            let dt = last.1.elapsed().as_secs_f64().max(1e-9);
            let rate = (now.records - last.0.records) as f64 / dt;
            bar.set_message(progress_line(verb, &now, rate));
            bar.tick();
            last = (now, std::time::Instant::now());
        }
    })
}

/// The live line's text.
fn progress_line(verb: &str, s: &ProgressSnapshot, rate: f64) -> String {
    let lag = if verb == "pulled" {
        format!("lag {} messages, {} bytes", s.lag_messages, s.lag_bytes)
    } else {
        format!("lag {} records, {} bytes", s.lag_records, s.lag_bytes)
    };
    format!(
        "{verb} {} records, {:.0} records/s, position {}, {lag}",
        s.records, rate, s.position
    )
}

fn relay_error(e: kekbit_relay::RelayError) -> CliError {
    CliError::Other(e.to_string())
}

async fn push(args: &RelayPushArgs) -> CliResult {
    if args.in_flight == 0 {
        return Err(CliError::Usage("--in-flight must be at least 1".into()));
    }
    let (bar, sink) = live_line();
    let settings = StreamSettings {
        duplicate_window: args.duplicate_window,
        storage: match args.storage {
            Storage::File => StorageType::File,
            Storage::Memory => StorageType::Memory,
        },
        replicas: args.replicas,
    };
    let mut options = PushOptions::new(&args.server, &args.stream, &args.journal)
        .max_message_bytes(usize::try_from(args.max_message).unwrap_or(usize::MAX))
        .max_in_flight(args.in_flight)
        .until_closed(args.until_closed)
        .idle(match args.idle {
            Idle::Spin => IdleStrategy::Spin,
            Idle::Yield => IdleStrategy::Yield,
            Idle::Backoff => IdleStrategy::default(),
        })
        .stream_settings(settings)
        .events(sink);
    if let Some(subject) = &args.subject {
        options = options.subject(subject);
    }
    if let Some(from) = args.from {
        options = options.start(StartAt::Position(from));
    }
    let push = Push::new(options);
    let ticker = follow(&bar, push.progress(), "pushed");
    let result = push.run_until(interrupted()).await;
    ticker.abort();
    bar.finish_and_clear();
    let stats = result.map_err(relay_error)?;
    report_push(&stats, args.json)
}

async fn pull(args: &RelayPullArgs) -> CliResult {
    let (bar, sink) = live_line();
    let mut options = PullOptions::new(&args.server, &args.stream, &args.journal)
        .until_closed(args.until_closed)
        .events(sink);
    if let Some(consumer) = &args.consumer {
        options = options.consumer(consumer);
    }
    let pull = Pull::new(options);
    let ticker = follow(&bar, pull.progress(), "pulled");
    let result = pull.run_until(interrupted()).await;
    ticker.abort();
    bar.finish_and_clear();
    let stats = result.map_err(relay_error)?;
    report_pull(&stats, args.json)
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { count as f64 / s } else { 0.0 }
}

fn report_push(s: &PushStats, json: bool) -> CliResult {
    if json {
        let value = serde_json::json!({
            "command": "push",
            "records": s.records,
            "bytes": s.bytes,
            "messages": s.messages,
            "start_position": s.start_position,
            "end_position": s.end_position,
            "resyncs": s.resyncs,
            "elapsed_s": s.elapsed.as_secs_f64(),
            "records_per_s": per_second(s.records, s.elapsed),
        });
        writeln!(io::stdout(), "{value}").map_err(stdout_error)
    } else {
        let _ = writeln!(
            io::stderr(),
            "kekbit relay push: {} records ({} bytes) in {} messages, {:.2} s, {:.0} records/s; \
             the stream ends at position {}",
            s.records,
            s.bytes,
            s.messages,
            s.elapsed.as_secs_f64(),
            per_second(s.records, s.elapsed),
            s.end_position
        );
        Ok(())
    }
}

fn report_pull(s: &PullStats, json: bool) -> CliResult {
    if json {
        let value = serde_json::json!({
            "command": "pull",
            "records": s.records,
            "bytes": s.bytes,
            "messages": s.messages,
            "skipped_records": s.skipped_records,
            "start_position": s.start_position,
            "end_position": s.end_position,
            "resyncs": s.resyncs,
            "closed": s.closed,
            "elapsed_s": s.elapsed.as_secs_f64(),
            "records_per_s": per_second(s.records, s.elapsed),
        });
        writeln!(io::stdout(), "{value}").map_err(stdout_error)
    } else {
        let _ = writeln!(
            io::stderr(),
            "kekbit relay pull: {} records ({} bytes) in {} messages, {:.2} s, {:.0} records/s; \
             the replica ends at position {}{}",
            s.records,
            s.bytes,
            s.messages,
            s.elapsed.as_secs_f64(),
            per_second(s.records, s.elapsed),
            s.end_position,
            if s.closed {
                " (closed, as the source)"
            } else {
                ""
            }
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_line() {
        let s = ProgressSnapshot {
            records: 10,
            position: 160,
            lag_records: 2,
            lag_bytes: 32,
            ..Default::default()
        };
        assert_eq!(
            progress_line("pushed", &s, 5.0),
            "pushed 10 records, 5 records/s, position 160, lag 2 records, 32 bytes"
        );
        let s = ProgressSnapshot {
            lag_messages: 3,
            ..s
        };
        assert_eq!(
            progress_line("pulled", &s, 5.0),
            "pulled 10 records, 5 records/s, position 160, lag 3 messages, 32 bytes"
        );
    }
}
