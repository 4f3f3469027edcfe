//! The publisher's clock. Production uses the system clock; tests move it
//! forward to see roles re-signed before they expire.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tufa_metadata::UtcTime;

/// The system clock plus an offset (zero unless a test advances it).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> UtcTime {
        UtcTime::now().plus_seconds(self.offset.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}
