//! A per-device log rate limit (issue 18, "Logs"): a hostile device must not flood the journal.
//! Every info, warn or error event with a `device` field takes a token from that device's bucket (a burst of
//! [`BURST`], then one line per [`EVERY`]); beyond that its lines are dropped, and the next line
//! that gets through is preceded by one saying how many were. Events without a `device` field
//! pass untouched. The buckets are [`KeyedBuckets`], bounded to [`MAX_DEVICES`] devices.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::server::rate::{KeyedBuckets, TokenBucket, Verdict};

/// Lines one device may log at once.
pub const BURST: u32 = 30;
/// Then one line per this long.
pub const EVERY: Duration = Duration::from_secs(2);
/// Devices tracked at most (made-up addresses push out the oldest).
pub const MAX_DEVICES: usize = 1024;

/// The layer; add it to the subscriber before the output layer.
#[derive(Debug)]
pub struct DeviceLogLimit {
    buckets: Mutex<KeyedBuckets<String>>,
}

impl Default for DeviceLogLimit {
    fn default() -> Self {
        DeviceLogLimit {
            buckets: Mutex::new(KeyedBuckets::new(
                TokenBucket::new(BURST, EVERY),
                MAX_DEVICES,
            )),
        }
    }
}

#[derive(Default)]
struct DeviceField(Option<String>);

impl Visit for DeviceField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "device" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "device" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber> Layer<S> for DeviceLogLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        // Debug and trace are the operator's choice (per-block detail): not limited.
        if *event.metadata().level() > Level::INFO {
            return true;
        }
        let mut device = DeviceField::default();
        event.record(&mut device);
        let Some(device) = device.0 else {
            return true;
        };
        #[allow(clippy::disallowed_methods)] // the IO layer's clock
        let now = Instant::now();
        let verdict = self
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(&device, now);
        match verdict {
            Verdict::Refused => false,
            Verdict::Allowed { suppressed: 0 } => true,
            Verdict::Allowed { suppressed } => {
                // `for_device`, not `device`: this line is not limited itself.
                tracing::warn!(for_device = %device, suppressed, "log lines of this device were dropped (per-device log rate limit)");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Arc;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_device_cannot_flood_the_log_and_others_still_log() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with(DeviceLogLimit::default())
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            for n in 0..1000 {
                tracing::info!(device = "0x1234", n, "hostile frame");
            }
            tracing::debug!(device = "0x1234", "per-block detail is not limited");
            tracing::info!(device = "0x5678", "a normal device");
            tracing::info!("no device at all");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let hostile = text.matches("hostile frame").count();
        assert_eq!(hostile, BURST as usize, "{text}");
        assert!(text.contains("a normal device"));
        assert!(text.contains("per-block detail is not limited"));
        assert!(text.contains("no device at all"));
    }
}
