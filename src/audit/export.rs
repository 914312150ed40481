//! The bounded queue between checks and the sink, and the one task that
//! drains it: it takes up to a batch of records (waiting up to the flush
//! interval for a batch to fill, so a busy server exports few large batches
//! rather than a write per record), hands them to the sink, and counts them
//! exported or dropped. Checks only ever `try_send`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::file::FileSink;
use super::otlp::OtlpSink;
use super::record::AuditRecord;
use super::settings::{AuditSettings, SinkSettings};

/// What every [`Auditor`](super::Auditor) clone shares.
pub(super) struct Shared {
    pub(super) settings: AuditSettings,
    sender: mpsc::Sender<AuditRecord>,
}

impl Shared {
    /// Queues `record`, or drops and counts it when the queue is full.
    pub(super) fn submit(&self, record: AuditRecord) {
        match self.sender.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::metrics::record_audit_dropped("queue_full", 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                crate::metrics::record_audit_dropped("shutdown", 1);
            }
        }
    }
}

/// The export task; [`AuditTask::finish`] flushes what is queued.
#[must_use = "call finish() at shutdown, or queued records are lost"]
pub(crate) struct AuditTask {
    handle: JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

impl AuditTask {
    /// Stops taking records and exports those queued, for at most `grace`;
    /// what is left then is lost (and was counted as queued, never exported).
    pub(crate) async fn finish(self, grace: Duration) {
        let _ = self.stop.send(());
        let abort = self.handle.abort_handle();
        if tokio::time::timeout(grace, self.handle).await.is_err() {
            abort.abort();
            tracing::warn!(
                ?grace,
                "audit: records still queued at shutdown were not exported"
            );
        }
    }
}

/// Starts the queue and its export task.
pub(super) fn start(settings: AuditSettings) -> (Arc<Shared>, AuditTask) {
    let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
    let sink = Sink::new(&settings.sink);
    let (stop, stopped) = oneshot::channel();
    let batching = Batching {
        size: settings.batch_size.max(1),
        interval: settings.flush_interval,
    };
    let handle = tokio::spawn(drain(receiver, sink, batching, stopped));
    describe(&settings);
    let shared = Arc::new(Shared { settings, sender });
    (shared, AuditTask { handle, stop })
}

fn describe(settings: &AuditSettings) {
    let (sink, target) = match &settings.sink {
        SinkSettings::Otlp { endpoint, .. } => ("otlp", endpoint.to_string()),
        SinkSettings::File { path, .. } => ("file", path.display().to_string()),
    };
    tracing::info!(
        sink,
        target,
        allow_sample_ratio = settings.allow_sample_ratio,
        record_denies = settings.record_denies,
        queue_capacity = settings.queue_capacity,
        "audit: recording decisions"
    );
}

/// Where a batch goes.
enum Sink {
    Otlp(OtlpSink),
    File(FileSink),
}

impl Sink {
    fn new(settings: &SinkSettings) -> Sink {
        match settings {
            SinkSettings::Otlp {
                endpoint,
                service_name,
                timeout,
            } => Sink::Otlp(OtlpSink::new(endpoint, service_name, *timeout)),
            SinkSettings::File {
                path,
                max_bytes,
                max_files,
            } => Sink::File(FileSink::new(path.clone(), *max_bytes, *max_files)),
        }
    }

    /// Exports `batch`; `Ok(n)` is how many the receiver refused.
    async fn write(&mut self, batch: &[AuditRecord]) -> Result<u64, String> {
        match self {
            Sink::Otlp(sink) => sink.export(batch).await,
            Sink::File(sink) => sink.append(batch).await.map(|()| 0),
        }
    }
}

/// After a failed export, batches are dropped (and counted) without a try
/// for this long: a collector that is down costs no connection attempt,
/// and no request built, per batch.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How records are grouped for export.
struct Batching {
    /// Records per export at most.
    size: usize,
    /// Longest a record waits for its batch to fill.
    interval: Duration,
}

/// Takes batches until the queue is closed and empty: on `stop`, or when
/// every sender is gone.
async fn drain(
    mut receiver: mpsc::Receiver<AuditRecord>,
    mut sink: Sink,
    batching: Batching,
    mut stop: oneshot::Receiver<()>,
) {
    let batch_size = batching.size;
    let mut batch = Vec::with_capacity(batch_size);
    let mut stopping = false;
    let mut failing = false;
    let mut retry_at = tokio::time::Instant::now();
    loop {
        let taken = tokio::select! {
            taken = receiver.recv_many(&mut batch, batch_size) => taken,
            _ = &mut stop, if !stopping => {
                stopping = true;
                receiver.close();
                continue;
            }
        };
        if taken == 0 {
            break;
        }
        let deadline = tokio::time::Instant::now() + batching.interval;
        while batch.len() < batch_size && !stopping {
            let room = batch_size - batch.len();
            tokio::select! {
                taken = receiver.recv_many(&mut batch, room) => {
                    if taken == 0 {
                        break;
                    }
                }
                () = tokio::time::sleep_until(deadline) => break,
                _ = &mut stop => {
                    stopping = true;
                    receiver.close();
                }
            }
        }
        crate::metrics::set_audit_queue(receiver.len());
        let count = batch.len() as u64;
        if failing && tokio::time::Instant::now() < retry_at {
            crate::metrics::record_audit_dropped("export_failed", count);
            batch.clear();
            continue;
        }
        match sink.write(&batch).await {
            Ok(refused) => {
                if failing {
                    failing = false;
                    tracing::info!("audit: export works again");
                }
                crate::metrics::record_audit_exported(count - refused.min(count));
                if refused > 0 {
                    crate::metrics::record_audit_dropped("rejected", refused);
                }
            }
            Err(error) => {
                if !failing {
                    failing = true;
                    tracing::warn!(%error, "audit: export failed; records are dropped and counted until it works again");
                }
                crate::metrics::record_audit_dropped("export_failed", count);
                retry_at = tokio::time::Instant::now() + RETRY_AFTER;
            }
        }
        batch.clear();
        crate::metrics::set_audit_queue(receiver.len());
    }
}
