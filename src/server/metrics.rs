//! What the shell counts for `--metrics-listen`, and the Prometheus text it makes of it.
//!
//! The counters are plain integers the loop adds to as it works (one addition per read, per
//! decoded message, per write call, per member's take of a turn's broadcasts, one clock read per
//! turn): no atomics, no locks, no map lookups. Only a scrape turns them, with what the core, the
//! worker and `/proc/self` say at that moment, into a [`Snapshot`] and the exposition text
//! (prometheus-client's encoder, fed through a collector of constant values).

use std::io::{self, IoSlice, Write};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::proto::Mode;

/// The upper bounds of the turn-time histogram's buckets, in seconds (and `+Inf` after them).
pub const TURN_BUCKETS: [f64; 13] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// How long turns of the loop took: a count per bucket (the last one past every bound) and the
/// sum, in nanoseconds.
#[derive(Clone, Debug)]
pub struct TurnTimes {
    bounds_ns: [u64; TURN_BUCKETS.len()],
    counts: [u64; TURN_BUCKETS.len() + 1],
    sum_ns: u64,
}

impl Default for TurnTimes {
    fn default() -> TurnTimes {
        TurnTimes {
            bounds_ns: TURN_BUCKETS.map(|secs| (secs * 1e9) as u64),
            counts: [0; TURN_BUCKETS.len() + 1],
            sum_ns: 0,
        }
    }
}

impl TurnTimes {
    /// Counts one turn that took `took`.
    pub fn record(&mut self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let bucket = self
            .bounds_ns
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(TURN_BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    /// How many turns were counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Why a slow consumer was cut off.
#[derive(Clone, Copy, Debug)]
pub enum SlowLimit {
    /// More than `--max-outbuf` queued at once.
    Hard,
    /// More than `--outbuf-soft` queued for `--outbuf-soft-secs`.
    Soft,
}

/// What the shell counts as it works, since the server started.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Connections accepted on the chat listener (refused ones not counted).
    pub accepted: u64,
    /// Messages decoded from clients and handed to the core.
    pub messages_in: u64,
    /// Messages queued for one connection each, besides the room broadcasts (counted by the
    /// fan-out).
    pub deliveries: u64,
    /// Bytes read from clients' sockets.
    pub bytes_in: u64,
    /// Bytes written to clients' sockets.
    pub bytes_out: u64,
    /// Slow consumers cut off at the hard limit, and at the soft limit.
    pub slow_consumers: [u64; 2],
    /// Times a client's reading was paused because its flood allowance ran out.
    pub flood_pauses: u64,
    /// How long each turn of the loop took.
    pub turns: TurnTimes,
}

impl Counters {
    /// Counts a slow consumer cut off at `limit`.
    pub fn slow_consumer(&mut self, limit: SlowLimit) {
        self.slow_consumers[limit as usize] += 1;
    }
}

/// A socket writer that adds what it writes to a counter.
pub struct Counted<'a, W> {
    inner: &'a mut W,
    bytes: &'a mut u64,
}

impl<'a, W> Counted<'a, W> {
    /// `inner`, its writes added to `bytes`.
    pub fn new(inner: &'a mut W, bytes: &'a mut u64) -> Self {
        Counted { inner, bytes }
    }
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.bytes += n as u64;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        *self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The wire modes as the `mode` label names them; `opening` is a connection whose mode is not
/// known yet (being sniffed, an HTTP request, a TLS handshake) or that was refused.
pub(crate) const MODES: [&str; 5] = ["text", "framed", "web", "irc", "opening"];

/// The `mode` label's index for a connection in `mode` (`None`: not open yet).
pub fn mode_index(mode: Option<Mode>) -> usize {
    match mode {
        Some(Mode::Text) => 0,
        Some(Mode::Framed) => 1,
        Some(Mode::Web) => 2,
        Some(Mode::Irc(_)) => 3,
        None => 4,
    }
}

/// Everything one scrape shows, taken at once.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The shell's counters, room broadcasts' deliveries added in.
    pub counters: Counters,
    /// Open connections by [`mode_index`], plain and over TLS.
    pub connections: [[u64; 2]; MODES.len()],
    /// Users who have joined (from the core).
    pub users_online: u64,
    /// Rooms that exist, the default room included (from the core).
    pub rooms: u64,
    /// Logins refused for a wrong password (from the core).
    pub failed_logins: u64,
    /// Password checks the core holds back (the login throttle).
    pub password_checks_held: u64,
    /// Password checks sent to the worker thread and not answered yet.
    pub password_checks_queued: u64,
    /// The process's resident memory, if `/proc/self/status` could be read.
    pub rss_bytes: Option<u64>,
    /// The process's open descriptors, if `/proc/self/fd` could be read.
    pub open_fds: Option<u64>,
    /// The soft limit on descriptors.
    pub max_fds: Option<u64>,
}

impl Snapshot {
    /// The Prometheus text format (0.0.4) of this snapshot.
    pub fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        // Writing into a String cannot fail, and every name and label here is a constant.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }
}

/// One metric without labels.
fn one(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let metric_type = metric.metric_type();
    metric.encode(encoder.encode_descriptor(name, help, unit, metric_type)?)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let c = &self.counters;
        let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
        {
            let help = "Open connections on the chat listener, by wire mode and transport";
            let mut family =
                e.encode_descriptor("chatd_connections", help, None, MetricType::Gauge)?;
            for (mode, counts) in MODES.iter().zip(self.connections) {
                for (transport, count) in ["plain", "tls"].iter().zip(counts) {
                    let labels = [("mode", *mode), ("transport", *transport)];
                    gauge(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let counter = ConstCounter::new;
        one(
            e,
            "chatd_connections_accepted",
            "Connections accepted on the chat listener",
            None,
            counter(c.accepted),
        )?;
        one(
            e,
            "chatd_users_online",
            "Users who have joined",
            None,
            gauge(self.users_online),
        )?;
        one(
            e,
            "chatd_rooms",
            "Rooms that exist, the default room included",
            None,
            gauge(self.rooms),
        )?;
        one(
            e,
            "chatd_messages_received",
            "Messages decoded from clients and handed to the chat core",
            None,
            counter(c.messages_in),
        )?;
        one(
            e,
            "chatd_deliveries",
            "Messages queued for a connection, one per recipient",
            None,
            counter(c.deliveries),
        )?;
        one(
            e,
            "chatd_received",
            "Bytes read from client sockets",
            Some(&Unit::Bytes),
            counter(c.bytes_in),
        )?;
        one(
            e,
            "chatd_sent",
            "Bytes written to client sockets",
            Some(&Unit::Bytes),
            counter(c.bytes_out),
        )?;
        {
            let help = "Clients disconnected as slow consumers, by the output limit they broke";
            let mut family =
                e.encode_descriptor("chatd_slow_consumers", help, None, MetricType::Counter)?;
            for (limit, count) in ["hard", "soft"].iter().zip(c.slow_consumers) {
                counter(count).encode(family.encode_family(&[("limit", *limit)])?)?;
            }
        }
        one(
            e,
            "chatd_flood_pauses",
            "Times a client's reading paused because its flood allowance ran out",
            None,
            counter(c.flood_pauses),
        )?;
        one(
            e,
            "chatd_failed_logins",
            "Logins refused for a wrong password",
            None,
            counter(self.failed_logins),
        )?;
        one(
            e,
            "chatd_password_checks_queued",
            "Password checks waiting for or on the hashing thread",
            None,
            gauge(self.password_checks_queued),
        )?;
        one(
            e,
            "chatd_password_checks_held",
            "Password checks held back by the login throttle",
            None,
            gauge(self.password_checks_held),
        )?;
        {
            let help =
                "How long each turn of the event loop took, from poll's return to the next poll";
            let unit = Unit::Seconds;
            let hist =
                e.encode_descriptor("chatd_loop_turn", help, Some(&unit), MetricType::Histogram);
            let buckets: Vec<(f64, u64)> = TURN_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(c.turns.counts)
                .collect();
            let sum = c.turns.sum_ns as f64 / 1e9;
            hist?.encode_histogram::<NoLabelSet>(sum, c.turns.count(), &buckets, None)?;
        }
        if let Some(rss) = self.rss_bytes {
            one(
                e,
                "process_resident_memory",
                "Resident memory size",
                Some(&Unit::Bytes),
                gauge(rss),
            )?;
        }
        if let Some(fds) = self.open_fds {
            one(
                e,
                "process_open_fds",
                "Open file descriptors",
                None,
                gauge(fds),
            )?;
        }
        if let Some(max) = self.max_fds {
            one(
                e,
                "process_max_fds",
                "The most file descriptors the process may open",
                None,
                gauge(max),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_lands_in_the_first_bucket_that_holds_it() {
        let mut turns = TurnTimes::default();
        turns.record(Duration::from_micros(100)); // on the first bound: in it
        turns.record(Duration::from_micros(101));
        turns.record(Duration::from_millis(3));
        turns.record(Duration::from_secs(5));
        assert_eq!(turns.counts[0], 1);
        assert_eq!(turns.counts[1], 1);
        assert_eq!(turns.counts[5], 1, "3 ms is under the 5 ms bound");
        assert_eq!(turns.counts[TURN_BUCKETS.len()], 1, "past every bound");
        assert_eq!(turns.count(), 4);
        assert_eq!(turns.sum_ns, 5_003_201_000);
    }

    #[test]
    fn the_exposition_has_every_metric_with_its_type_and_values() {
        let mut counters = Counters {
            messages_in: 7,
            bytes_in: 1234,
            ..Counters::default()
        };
        counters.slow_consumer(SlowLimit::Soft);
        counters.turns.record(Duration::from_micros(50));
        counters.turns.record(Duration::from_millis(20));
        let mut connections = [[0; 2]; MODES.len()];
        connections[mode_index(Some(Mode::Framed))][1] = 3;
        let text = Snapshot {
            counters,
            connections,
            users_online: 2,
            rss_bytes: Some(4096),
            ..Snapshot::default()
        }
        .encode();
        let lines: Vec<&str> = text.lines().collect();
        for expected in [
            "# TYPE chatd_connections gauge",
            "chatd_connections{mode=\"framed\",transport=\"tls\"} 3",
            "chatd_connections{mode=\"text\",transport=\"plain\"} 0",
            "chatd_connections{mode=\"irc\",transport=\"plain\"} 0",
            "# TYPE chatd_messages_received_total counter",
            "chatd_messages_received_total 7",
            "chatd_received_bytes_total 1234",
            "chatd_users_online 2",
            "chatd_slow_consumers_total{limit=\"hard\"} 0",
            "chatd_slow_consumers_total{limit=\"soft\"} 1",
            "# TYPE chatd_loop_turn_seconds histogram",
            "chatd_loop_turn_seconds_bucket{le=\"0.0001\"} 1",
            "chatd_loop_turn_seconds_bucket{le=\"0.01\"} 1",
            "chatd_loop_turn_seconds_bucket{le=\"0.025\"} 2",
            "chatd_loop_turn_seconds_bucket{le=\"+Inf\"} 2",
            "chatd_loop_turn_seconds_sum 0.02005",
            "chatd_loop_turn_seconds_count 2",
            "process_resident_memory_bytes 4096",
        ] {
            assert!(lines.contains(&expected), "no {expected:?} in\n{text}");
        }
        // What could not be read is left out rather than shown as 0.
        assert!(!text.contains("process_open_fds"), "{text}");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("# TYPE")).count(),
            15,
            "{text}"
        );
    }

    #[test]
    fn a_counted_writer_adds_what_was_written() {
        let mut sink = Vec::new();
        let mut bytes = 5;
        let mut counted = Counted::new(&mut sink, &mut bytes);
        counted.write_all(b"hello").unwrap();
        let n = counted
            .write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"c")])
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(bytes, 13);
        assert_eq!(sink, b"helloabc");
    }
}
