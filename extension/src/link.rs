//! What a client has seen of its link to the service, so that placement weighs moving
//! rows in time rather than bytes: the shortest round trip of its metadata calls, and the
//! rate at which the bytes of its large results arrived (averaged, the latest weighing
//! most).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Results smaller than this tell more about the service's work than about the link.
const MEASURED_BYTES: u64 = 4 << 20;

/// The link of a client and every client made from it (its transactions, its session).
#[derive(Debug, Default)]
pub struct Link {
    /// Microseconds; 0 until measured.
    round_trip_us: AtomicU64,
    /// 0 until measured.
    bytes_per_second: AtomicU64,
}

impl Link {
    /// A call of `round_trips` round trips took `elapsed`. The shortest is kept: the
    /// others waited on the service as well.
    pub(crate) fn round_trips(&self, round_trips: u32, elapsed: Duration) {
        let each = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX) / u64::from(round_trips.max(1));
        let each = each.max(1);
        let _ = self
            .round_trip_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                (old == 0 || each < old).then_some(each)
            });
    }

    /// `bytes` of a result (as sent) arrived over `elapsed`, from its DoGet on. The rate
    /// kept halves its distance to each new one: a result slowed by the service or by its
    /// reader, or one buffered before its reader came, moves it only so far.
    pub(crate) fn received(&self, bytes: u64, elapsed: Duration) {
        if bytes < MEASURED_BYTES || elapsed.is_zero() {
            return;
        }
        let rate = ((bytes as f64 / elapsed.as_secs_f64()) as u64).max(1);
        let _ = self
            .bytes_per_second
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 { rate } else { old / 2 + rate / 2 })
            });
    }

    /// The shortest round trip seen, if any.
    pub fn round_trip(&self) -> Option<Duration> {
        match self.round_trip_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// The rate of large results, if any arrived.
    pub fn bytes_per_second(&self) -> Option<u64> {
        match self.bytes_per_second.load(Ordering::Relaxed) {
            0 => None,
            rate => Some(rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_round_trip_and_the_rate_of_large_results_count() {
        let link = Link::default();
        assert_eq!((link.round_trip(), link.bytes_per_second()), (None, None));
        link.round_trips(2, Duration::from_millis(10));
        link.round_trips(1, Duration::from_millis(9));
        link.round_trips(2, Duration::from_millis(30));
        assert_eq!(link.round_trip(), Some(Duration::from_millis(5)));
        // Small results say nothing of the link.
        link.received(1 << 20, Duration::from_millis(1));
        assert_eq!(link.bytes_per_second(), None);
        link.received(8 << 20, Duration::from_secs(1));
        assert_eq!(link.bytes_per_second(), Some(8 << 20));
        link.received(8 << 20, Duration::from_secs(2));
        assert_eq!(link.bytes_per_second(), Some(6 << 20));
    }
}
