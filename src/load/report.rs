//! The figures of one run, as a human summary and as JSON.

use std::fmt::Write as _;

use super::histogram::Histogram;
use super::procfs::CpuUsed;
use super::settings::{Scenario, Settings};
use super::wire::WireMode;

/// Latency percentiles of the deliveries, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// The median.
    pub p50: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    pub p999: u64,
    /// The slowest delivery.
    pub max: u64,
    /// The mean.
    pub mean: f64,
}

impl Latency {
    /// The percentiles of what `h` recorded; `None` if it recorded nothing.
    pub fn of(h: &Histogram) -> Option<Latency> {
        Some(Latency {
            p50: h.quantile(0.5)?,
            p99: h.quantile(0.99)?,
            p999: h.quantile(0.999)?,
            max: h.max()?,
            mean: h.mean()?,
        })
    }
}

/// What the server used, read from /proc.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerUse {
    /// CPU time over the measured part of the run.
    pub cpu: CpuUsed,
    /// Resident memory before the first connection.
    pub rss_before: u64,
    /// Resident memory at the end of the measured part.
    pub rss_after: u64,
    /// The highest resident memory the server ever had.
    pub peak_rss: u64,
}

/// What the rest of the machine did meanwhile, to tell a clean run from a noisy one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MachineUse {
    /// CPU time of every process but the server and the tool, in cores (to the 10 ms tick).
    pub other_cores: f64,
    /// Time the hypervisor took the CPUs for something else while they had work, in cores.
    pub steal_cores: f64,
}

/// One node's share of a run against several (the nodes of a cluster).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeUse {
    /// Its process id.
    pub pid: u32,
    /// The CPU time it used over the measured part.
    pub cpu: CpuUsed,
    /// Deliveries to the clients connected to it.
    pub delivered: u64,
}

impl NodeUse {
    /// Its CPU microseconds per 1,000 deliveries to its own clients.
    pub fn us_per_1k(&self) -> Option<f64> {
        (self.delivered > 0)
            .then(|| self.cpu.total_ns as f64 / 1_000.0 / (self.delivered as f64 / 1_000.0))
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// What the server is called.
    pub label: String,
    /// Where it was.
    pub addr: String,
    /// The kind of load.
    pub scenario: Scenario,
    /// The wire mode.
    pub mode: WireMode,
    /// Connections asked for.
    pub clients: usize,
    /// Messages each client was to send.
    pub planned_per_client: u64,
    /// The rooms the clients were spread over (0: none).
    pub rooms: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Rate: messages per second asked for.
    pub rate: Option<u64>,
    /// Connections that joined.
    pub joined: usize,
    /// Connections that could not connect or join.
    pub join_failures: usize,
    /// Joined connections the server closed during the run.
    pub dropped: usize,
    /// The first connection error seen, for the user to act on.
    pub first_error: Option<String>,
    /// Whether the run hit `--timeout`.
    pub timed_out: bool,
    /// Seconds from the first connection to the last join.
    pub join_secs: f64,
    /// Seconds from the first measured message to the last delivery (idle: the whole run).
    pub run_secs: f64,
    /// Messages written out whole.
    pub sent: u64,
    /// Deliveries due: each message sent, to every other connection still there.
    pub expected: u64,
    /// Distinct deliveries.
    pub delivered: u64,
    /// Deliveries due that never came.
    pub lost: u64,
    /// Deliveries that came more than once.
    pub duplicated: u64,
    /// Markers of this run nobody sent to that receiver.
    pub unexpected: u64,
    /// Lines received that carry no marker of this run (greetings, notices, probes).
    pub other_lines: u64,
    /// Latency of the deliveries; `None` if there were none.
    pub latency: Option<Latency>,
    /// With several servers: latency of the deliveries whose sender was connected to another
    /// server than the receiver; `None` if there were none.
    pub cross_latency: Option<Latency>,
    /// With several servers and their `--server-pid`s: each one's share, in `--addr` order.
    pub nodes: Vec<NodeUse>,
    /// Rate: how far behind its schedule a send went at worst, in nanoseconds.
    pub max_send_lag_ns: Option<u64>,
    /// The server's CPU and memory, with `--server-pid`.
    pub server: Option<ServerUse>,
    /// The load tool's own CPU time over the measured part.
    pub tool_cpu: Option<CpuUsed>,
    /// The rest of the machine over the measured part, with `--server-pid`.
    pub machine: Option<MachineUse>,
    /// Warnings about the run's figures.
    pub notes: Vec<String>,
    /// With `--tls`: how the server's certificate was checked; `None` for plain TCP.
    pub tls: Option<String>,
}

impl Report {
    /// The report of a run of `s` that measured nothing yet: every count 0, no figures.
    pub fn new(s: &Settings) -> Report {
        Report {
            label: s.label.clone(),
            addr: addrs_text(s),
            scenario: s.scenario,
            mode: s.mode,
            clients: s.clients,
            planned_per_client: s.planned_per_client(),
            rooms: s.rooms,
            size: s.size,
            rate: (s.scenario == Scenario::Rate).then_some(s.rate),
            joined: 0,
            join_failures: 0,
            dropped: 0,
            first_error: None,
            timed_out: false,
            join_secs: 0.0,
            run_secs: 0.0,
            sent: 0,
            expected: 0,
            delivered: 0,
            lost: 0,
            duplicated: 0,
            unexpected: 0,
            other_lines: 0,
            latency: None,
            cross_latency: None,
            nodes: Vec::new(),
            max_send_lag_ns: None,
            server: None,
            tool_cpu: None,
            machine: None,
            notes: Vec::new(),
            tls: s.tls.as_ref().map(|tls| tls.trust().to_string()),
        }
    }

    /// Whether the run did what it set out to: everyone joined, stayed, and got everything once.
    pub fn passed(&self) -> bool {
        !self.timed_out
            && self.join_failures == 0
            && self.dropped == 0
            && self.lost == 0
            && self.duplicated == 0
            && self.unexpected == 0
    }

    /// Deliveries per second over the measured part.
    pub fn deliveries_per_sec(&self) -> Option<f64> {
        (self.run_secs > 0.0 && self.delivered > 0).then(|| self.delivered as f64 / self.run_secs)
    }

    /// The server's CPU microseconds per 1,000 deliveries.
    pub fn server_us_per_1k(&self) -> Option<f64> {
        let server = self.server?;
        (self.delivered > 0)
            .then(|| server.cpu.total_ns as f64 / 1_000.0 / (self.delivered as f64 / 1_000.0))
    }

    /// Connect: connections made (greeted) per second of wall time.
    pub fn connections_per_sec(&self) -> Option<f64> {
        (self.scenario == Scenario::Connect && self.run_secs > 0.0 && self.joined > 0)
            .then(|| self.joined as f64 / self.run_secs)
    }

    /// Connect: the server's CPU microseconds per connection made.
    pub fn server_us_per_connection(&self) -> Option<f64> {
        let server = self.server?;
        (self.scenario == Scenario::Connect && self.joined > 0)
            .then(|| server.cpu.total_ns as f64 / 1_000.0 / self.joined as f64)
    }

    /// Connect: connections made per second of the server's CPU time, what one core of it
    /// could take a second.
    pub fn connections_per_server_cpu_sec(&self) -> Option<f64> {
        let server = self.server?;
        (self.scenario == Scenario::Connect && server.cpu.total_ns > 0)
            .then(|| self.joined as f64 / (server.cpu.total_ns as f64 / 1e9))
    }

    /// Idle: the server's resident memory per joined connection, in bytes.
    pub fn rss_per_connection(&self) -> Option<f64> {
        let server = self.server?;
        (self.scenario == Scenario::Idle && self.joined > 0)
            .then(|| (server.rss_after as f64 - server.rss_before as f64) / self.joined as f64)
    }

    /// The load tool's CPU time as a share of the measured part's wall time.
    pub fn tool_busy(&self) -> Option<f64> {
        let cpu = self.tool_cpu?;
        (self.run_secs > 0.0).then(|| cpu.total_ns as f64 / 1e9 / self.run_secs)
    }

    /// The summary for a person.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let what = match self.scenario {
            Scenario::Burst => format!(
                "{} clients x {} messages of {} bytes",
                self.clients, self.planned_per_client, self.size
            ),
            Scenario::Rate => format!(
                "{} msg/s over {} clients, {} bytes each",
                self.rate.unwrap_or(0),
                self.clients,
                self.size
            ),
            Scenario::Idle => format!("{} idle connections", self.clients),
            Scenario::Connect => {
                format!("{} new connections, each to its first line", self.clients)
            }
        };
        let what = match self.rooms {
            0 => what,
            n => format!("{what}, in {n} rooms"),
        };
        let tls = self
            .tls
            .as_ref()
            .map_or(String::new(), |trust| format!(" over TLS, {trust}"));
        let _ = writeln!(
            out,
            "chatd-load {} against {} at {} ({}{tls}): {what}",
            self.scenario, self.label, self.addr, self.mode
        );
        if self.scenario == Scenario::Connect {
            let rate = self
                .connections_per_sec()
                .map_or("-".to_owned(), |r| format!("{} /s", si(r)));
            let _ = writeln!(
                out,
                "  connected   {} of {} in {:.2} s: {rate}; {} failed",
                self.joined, self.clients, self.run_secs, self.join_failures
            );
            if let Some(l) = self.latency {
                let _ = writeln!(
                    out,
                    "  to 1st line p50 {}  p99 {}  p99.9 {}  max {}  mean {}",
                    duration(l.p50),
                    duration(l.p99),
                    duration(l.p999),
                    duration(l.max),
                    duration(l.mean as u64)
                );
            }
        } else {
            let _ = writeln!(
                out,
                "  joined      {} of {} in {:.2} s; {} failed, {} dropped later",
                self.joined, self.clients, self.join_secs, self.join_failures, self.dropped
            );
        }
        if !matches!(self.scenario, Scenario::Idle | Scenario::Connect) {
            let rate = self
                .deliveries_per_sec()
                .map_or("-".to_owned(), |r| format!("{} /s", si(r)));
            let _ = writeln!(
                out,
                "  deliveries  {} of {} in {:.3} s: {rate}; lost {}, duplicated {}, unexpected {}",
                self.delivered,
                self.expected,
                self.run_secs,
                self.lost,
                self.duplicated,
                self.unexpected
            );
            for (label, latency) in [
                ("latency    ", self.latency),
                ("  across   ", self.cross_latency),
            ] {
                if let Some(l) = latency {
                    let _ = writeln!(
                        out,
                        "  {label} p50 {}  p99 {}  p99.9 {}  max {}  mean {}",
                        duration(l.p50),
                        duration(l.p99),
                        duration(l.p999),
                        duration(l.max),
                        duration(l.mean as u64)
                    );
                }
            }
            if let Some(lag) = self.max_send_lag_ns {
                let _ = writeln!(
                    out,
                    "  schedule    {} sent; at worst {} behind",
                    self.sent,
                    duration(lag)
                );
            }
        }
        if let Some(server) = self.server {
            let cpu = server.cpu;
            let per_1k = match (
                self.server_us_per_connection(),
                self.connections_per_server_cpu_sec(),
            ) {
                (Some(us), Some(rate)) => format!(
                    ": {us:.1} us per connection, {} connections per CPU second",
                    si(rate)
                ),
                _ => self.server_us_per_1k().map_or(String::new(), |us| {
                    format!(": {us:.1} us per 1k deliveries")
                }),
            };
            let _ = writeln!(
                out,
                "  server      CPU {} (user {}, system {}){per_1k}",
                cpu_text(cpu),
                duration(cpu.user_ns),
                duration(cpu.system_ns),
            );
            for node in &self.nodes {
                let per_1k = node.us_per_1k().map_or(String::new(), |us| {
                    format!(": {us:.1} us per 1k deliveries to its clients")
                });
                let _ = writeln!(
                    out,
                    "    node {:<6} CPU {}, {} deliveries{per_1k}",
                    node.pid,
                    cpu_text(node.cpu),
                    node.delivered
                );
            }
            let per_conn = self.rss_per_connection().map_or(String::new(), |b| {
                format!("; {:.2} KiB per connection", b / 1024.0)
            });
            let _ = writeln!(
                out,
                "  server RSS  {} -> {} (peak {}){per_conn}",
                bytes(server.rss_before),
                bytes(server.rss_after),
                bytes(server.peak_rss)
            );
        }
        if let Some(cpu) = self.tool_cpu {
            let busy = self.tool_busy().map_or(String::new(), |b| {
                format!(", busy {:.0}% of the run", b * 100.0)
            });
            let _ = writeln!(out, "  load tool   CPU {}{busy}", cpu_text(cpu));
        }
        if let Some(m) = self.machine {
            let _ = writeln!(
                out,
                "  machine     other processes {:.2} cores, hypervisor steal {:.2} cores",
                m.other_cores, m.steal_cores
            );
        }
        if let Some(error) = &self.first_error {
            let _ = writeln!(out, "  first error {error}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note        {note}");
        }
        let _ = writeln!(
            out,
            "  result      {}",
            if self.passed() { "PASS" } else { "FAIL" }
        );
        out
    }

    /// The figures as one JSON object (times in nanoseconds unless the key says otherwise).
    pub fn json(&self) -> String {
        let mut j = Json::object();
        j.string("label", &self.label);
        j.string("addr", &self.addr);
        j.string("scenario", &self.scenario.to_string());
        j.string("mode", &self.mode.to_string());
        j.optional_string("tls", self.tls.as_deref());
        j.number("clients", self.clients as f64);
        j.number("planned_per_client", self.planned_per_client as f64);
        j.number("rooms", self.rooms as f64);
        j.number("size", self.size as f64);
        j.optional("rate", self.rate.map(|r| r as f64));
        j.number("joined", self.joined as f64);
        j.number("join_failures", self.join_failures as f64);
        j.number("dropped", self.dropped as f64);
        j.optional_string("first_error", self.first_error.as_deref());
        j.boolean("timed_out", self.timed_out);
        j.number("join_secs", self.join_secs);
        j.number("run_secs", self.run_secs);
        j.number("sent", self.sent as f64);
        j.number("expected", self.expected as f64);
        j.number("delivered", self.delivered as f64);
        j.number("lost", self.lost as f64);
        j.number("duplicated", self.duplicated as f64);
        j.number("unexpected", self.unexpected as f64);
        j.number("other_lines", self.other_lines as f64);
        j.optional("deliveries_per_sec", self.deliveries_per_sec());
        j.optional("connections_per_sec", self.connections_per_sec());
        for (key, latency) in [
            ("latency", self.latency),
            ("cross_latency", self.cross_latency),
        ] {
            match latency {
                Some(l) => {
                    let mut lat = Json::object();
                    lat.number("p50_ns", l.p50 as f64);
                    lat.number("p99_ns", l.p99 as f64);
                    lat.number("p999_ns", l.p999 as f64);
                    lat.number("max_ns", l.max as f64);
                    lat.number("mean_ns", l.mean);
                    j.raw(key, &lat.finish());
                }
                None => j.raw(key, "null"),
            }
        }
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                let mut n = cpu_json(node.cpu);
                n.number("pid", node.pid as f64);
                n.number("delivered", node.delivered as f64);
                n.optional("cpu_us_per_1k_deliveries", node.us_per_1k());
                n.finish()
            })
            .collect();
        j.raw("nodes", &format!("[{}]", nodes.join(",")));
        j.optional("max_send_lag_ns", self.max_send_lag_ns.map(|n| n as f64));
        match self.server {
            Some(server) => {
                let mut s = cpu_json(server.cpu);
                s.number("rss_before", server.rss_before as f64);
                s.number("rss_after", server.rss_after as f64);
                s.number("peak_rss", server.peak_rss as f64);
                s.optional("cpu_us_per_1k_deliveries", self.server_us_per_1k());
                s.optional("rss_per_connection", self.rss_per_connection());
                s.optional("cpu_us_per_connection", self.server_us_per_connection());
                s.optional(
                    "connections_per_cpu_sec",
                    self.connections_per_server_cpu_sec(),
                );
                j.raw("server", &s.finish());
            }
            None => j.raw("server", "null"),
        }
        match self.tool_cpu {
            Some(cpu) => {
                let mut t = cpu_json(cpu);
                t.optional("busy", self.tool_busy());
                j.raw("tool", &t.finish());
            }
            None => j.raw("tool", "null"),
        }
        match self.machine {
            Some(m) => {
                let mut o = Json::object();
                o.number("other_cores", m.other_cores);
                o.number("steal_cores", m.steal_cores);
                j.raw("machine", &o.finish());
            }
            None => j.raw("machine", "null"),
        }
        let notes: Vec<String> = self.notes.iter().map(|n| quote(n)).collect();
        j.raw("notes", &format!("[{}]", notes.join(",")));
        j.boolean("passed", self.passed());
        j.finish()
    }
}

/// The servers' addresses as the report shows them: `A` or `A,B,C`.
pub fn addrs_text(s: &Settings) -> String {
    let addrs: Vec<String> = s.addrs.iter().map(ToString::to_string).collect();
    addrs.join(",")
}

fn cpu_json(cpu: CpuUsed) -> Json {
    let mut j = Json::object();
    j.number("cpu_ns", cpu.total_ns as f64);
    j.boolean("cpu_precise", cpu.precise);
    j.number("user_ns", cpu.user_ns as f64);
    j.number("system_ns", cpu.system_ns as f64);
    j
}

fn cpu_text(cpu: CpuUsed) -> String {
    if cpu.precise {
        duration(cpu.total_ns)
    } else {
        format!("{} (to the 10 ms tick)", duration(cpu.total_ns))
    }
}

/// A duration in nanoseconds as `473 us`, `1.23 ms` or `2.50 s`.
pub fn duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.0} us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// A byte count as KiB or MiB.
pub fn bytes(n: u64) -> String {
    if n < 10 << 20 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

/// A rate as `950`, `12.3 k` or `2.66 M`.
pub fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A minimal JSON object writer: keys in the order given, numbers, strings, booleans, raw values.
struct Json {
    body: String,
}

impl Json {
    fn object() -> Json {
        Json {
            body: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) {
        if self.body.len() > 1 {
            self.body.push(',');
        }
        self.body.push_str(&quote(key));
        self.body.push(':');
    }

    fn raw(&mut self, key: &str, value: &str) {
        self.key(key);
        self.body.push_str(value);
    }

    fn number(&mut self, key: &str, value: f64) {
        let text = if !value.is_finite() {
            "null".to_owned()
        } else if value.fract() == 0.0 && value.abs() < 9e15 {
            format!("{}", value as i64)
        } else {
            format!("{value:.6}")
        };
        self.raw(key, &text);
    }

    fn optional(&mut self, key: &str, value: Option<f64>) {
        match value {
            Some(v) => self.number(key, v),
            None => self.raw(key, "null"),
        }
    }

    fn string(&mut self, key: &str, value: &str) {
        let quoted = quote(value);
        self.raw(key, &quoted);
    }

    fn optional_string(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.string(key, v),
            None => self.raw(key, "null"),
        }
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.raw(key, if value { "true" } else { "false" });
    }

    fn finish(mut self) -> String {
        self.body.push('}');
        self.body
    }
}

/// `text` as a JSON string literal.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            label: "chatd".into(),
            addr: "127.0.0.1:3001".into(),
            scenario: Scenario::Burst,
            mode: WireMode::Text,
            clients: 3,
            planned_per_client: 10,
            rooms: 0,
            size: 64,
            rate: None,
            joined: 3,
            join_failures: 0,
            dropped: 0,
            first_error: None,
            timed_out: false,
            join_secs: 0.01,
            run_secs: 0.5,
            sent: 30,
            expected: 60,
            delivered: 60,
            lost: 0,
            duplicated: 0,
            unexpected: 0,
            other_lines: 9,
            latency: Some(Latency {
                p50: 1_500,
                p99: 250_000,
                p999: 2_000_000,
                max: 3_000_000_000,
                mean: 10_000.5,
            }),
            cross_latency: None,
            nodes: Vec::new(),
            max_send_lag_ns: None,
            server: Some(ServerUse {
                cpu: CpuUsed {
                    total_ns: 3_000_000,
                    precise: true,
                    user_ns: 0,
                    system_ns: 0,
                },
                rss_before: 1 << 20,
                rss_after: 2 << 20,
                peak_rss: 2 << 20,
            }),
            tool_cpu: None,
            machine: Some(MachineUse {
                other_cores: 0.25,
                steal_cores: 0.0,
            }),
            notes: vec!["a \"quoted\"\nnote".into()],
            tls: None,
        }
    }

    #[test]
    fn derived_figures() {
        let r = report();
        assert!(r.passed());
        assert_eq!(r.deliveries_per_sec(), Some(120.0));
        // 3 ms of CPU for 60 deliveries: 50 us each, 50,000 us per 1,000.
        assert_eq!(r.server_us_per_1k(), Some(50_000.0));
        assert_eq!(r.rss_per_connection(), None);
        let lossy = Report {
            lost: 1,
            ..report()
        };
        assert!(!lossy.passed());
    }

    #[test]
    fn json_has_every_figure_and_escapes_strings() {
        let json = report().json();
        assert!(json.starts_with("{\"label\":\"chatd\","), "{json}");
        for part in [
            "\"delivered\":60,",
            "\"lost\":0,",
            "\"duplicated\":0,",
            "\"p99_ns\":250000,",
            "\"mean_ns\":10000.500000",
            "\"cpu_us_per_1k_deliveries\":50000,",
            "\"rate\":null,",
            "\"machine\":{\"other_cores\":0.250000,\"steal_cores\":0}",
            "\"notes\":[\"a \\\"quoted\\\"\\nnote\"]",
            "\"passed\":true}",
        ] {
            assert!(json.contains(part), "{part} not in {json}");
        }
    }

    #[test]
    fn several_nodes_are_shown_each_with_their_share_and_the_latency_across_them() {
        let mut r = report();
        r.cross_latency = Some(Latency {
            p50: 2_000,
            p99: 4_000_000,
            p999: 4_500_000,
            max: 5_000_000,
            mean: 3_000.0,
        });
        let cpu = CpuUsed {
            total_ns: 1_000_000,
            precise: true,
            user_ns: 0,
            system_ns: 0,
        };
        r.nodes = vec![
            NodeUse {
                pid: 11,
                cpu,
                delivered: 40,
            },
            NodeUse {
                pid: 12,
                cpu,
                delivered: 0,
            },
        ];
        let text = r.human();
        assert!(text.contains("  across    p50 2 us  p99 4.00 ms"), "{text}");
        assert!(text.contains("node 11     CPU"), "{text}");
        assert!(
            text.contains("25000.0 us per 1k deliveries to its clients"),
            "{text}"
        );
        let json = r.json();
        assert!(
            json.contains("\"cross_latency\":{\"p50_ns\":2000,"),
            "{json}"
        );
        assert!(
            json.contains("\"pid\":11,\"delivered\":40,\"cpu_us_per_1k_deliveries\":25000}"),
            "{json}"
        );
        assert!(report().json().contains("\"cross_latency\":null,"));
    }

    #[test]
    fn the_human_summary_names_the_figures() {
        let text = report().human();
        assert!(text.contains("60 of 60"), "{text}");
        assert!(text.contains("p99 250 us"), "{text}");
        assert!(text.contains("max 3.00 s"), "{text}");
        assert!(text.contains("50000.0 us per 1k deliveries"), "{text}");
        assert!(text.ends_with("result      PASS\n"), "{text}");
    }

    #[test]
    fn units_read_naturally() {
        assert_eq!(duration(999), "999 ns");
        assert_eq!(duration(470_000), "470 us");
        assert_eq!(duration(35_000_000), "35.00 ms");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(30 << 20), "30.0 MiB");
        assert_eq!(si(12_900_000.0), "12.90 M");
        assert_eq!(quote("\u{1}"), "\"\\u0001\"");
    }
}
