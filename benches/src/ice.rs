//! iceoryx2 0.10 (zero-copy IPC between processes) as a system under test:
//! a publish-subscribe service of `[u8]` slices, lossless (no safe
//! overflow, the publisher retries until delivered).

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;

use crate::pipe::{Backoff, Receiver, Sender};
use crate::{Res, fail};

/// Samples a subscriber may hold unread, for records of `len` bytes: about
/// 16 MiB of them, 256 to 8,192. The publisher waits beyond that (iceoryx2
/// yields the core while it retries), so a deep buffer keeps waits rare.
fn buffer(len: usize) -> usize {
    ((16 << 20) / len.max(1)).clamp(256, 8192)
}

/// Quiets iceoryx2's logger (errors only).
pub fn quiet() {
    set_log_level(LogLevel::Error);
}

fn service(
    node: &Node<ipc::Service>,
    name: &str,
    len: usize,
) -> Res<iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>> {
    let name: ServiceName = name
        .try_into()
        .map_err(|e| fail(format!("iceoryx2 name: {e:?}")))?;
    node.service_builder(&name)
        .publish_subscribe::<[u8]>()
        .subscriber_max_buffer_size(buffer(len))
        .history_size(0)
        .enable_safe_overflow(false)
        .max_publishers(1)
        .max_subscribers(4)
        .open_or_create()
        .map_err(|e| fail(format!("iceoryx2 service {name}: {e:?}")))
}

fn node() -> Res<Node<ipc::Service>> {
    NodeBuilder::new()
        .create::<ipc::Service>()
        .map_err(|e| fail(format!("iceoryx2 node: {e:?}")))
}

/// An iceoryx2 publisher of records up to a fixed length, as a [`Sender`].
pub struct IceTx {
    publisher: Publisher<ipc::Service, [u8], ()>,
    _node: Node<ipc::Service>,
}

impl IceTx {
    /// Opens (or creates) service `name` and a publisher for records of up
    /// to `max_len` bytes.
    pub fn new(name: &str, max_len: usize) -> Res<Self> {
        let node = node()?;
        let publisher = service(&node, name, max_len)?
            .publisher_builder()
            .initial_max_slice_len(max_len)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(|e| fail(format!("iceoryx2 publisher: {e:?}")))?;
        Ok(Self {
            publisher,
            _node: node,
        })
    }
}

impl Sender for IceTx {
    #[inline]
    fn send(&mut self, record: &[u8]) -> Res<()> {
        let mut backoff = Backoff::default();
        let sample = loop {
            match self.publisher.loan_slice_uninit(record.len()) {
                Ok(sample) => break sample,
                Err(iceoryx2::port::LoanError::OutOfMemory) => backoff.snooze(),
                Err(e) => return Err(fail(format!("iceoryx2 loan: {e:?}"))),
            }
        };
        let sample = sample.write_from_slice(record);
        sample
            .send()
            .map(|_| ())
            .map_err(|e| fail(format!("iceoryx2 send: {e:?}")))
    }
}

/// An iceoryx2 subscriber, as a [`Receiver`].
pub struct IceRx {
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    _node: Node<ipc::Service>,
}

impl IceRx {
    /// Opens (or creates) service `name` for records of up to `max_len`
    /// bytes and subscribes to it.
    pub fn new(name: &str, max_len: usize) -> Res<Self> {
        let node = node()?;
        let subscriber = service(&node, name, max_len)?
            .subscriber_builder()
            .buffer_size(buffer(max_len))
            .create()
            .map_err(|e| fail(format!("iceoryx2 subscriber: {e:?}")))?;
        Ok(Self {
            subscriber,
            _node: node,
        })
    }
}

impl Receiver for IceRx {
    #[inline]
    fn poll<F: FnMut(&[u8])>(&mut self, mut each: F) -> Res<usize> {
        let mut n = 0;
        loop {
            match self.subscriber.receive() {
                Ok(Some(sample)) => {
                    each(sample.payload());
                    n += 1;
                }
                Ok(None) => return Ok(n),
                Err(e) => return Err(fail(format!("iceoryx2 receive: {e:?}"))),
            }
        }
    }
}
