//! What a load run does, validated before any socket is opened.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use super::payload::MAX_MARKER_LEN;
use super::tls::TlsClient;
use super::wire::{Wire, WireMode};

/// The kind of load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Every client sends its messages as fast as it can; every other client must get them all.
    Burst,
    /// A steady total rate spread over the clients for a while; measures latency.
    Rate,
    /// Connections join and stay idle; measures the server's memory per connection.
    Idle,
    /// New connections one after another (at most `connect_batch` at once): connect (and with
    /// TLS, a full handshake), get the server's first line, close; measures connections per second.
    Connect,
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(text: &str) -> Result<Scenario, String> {
        match text {
            "burst" => Ok(Scenario::Burst),
            "rate" => Ok(Scenario::Rate),
            "idle" => Ok(Scenario::Idle),
            "connect" => Ok(Scenario::Connect),
            other => Err(format!(
                "unknown scenario {other:?}: use burst, rate, idle or connect"
            )),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Burst => "burst",
            Scenario::Rate => "rate",
            Scenario::Idle => "idle",
            Scenario::Connect => "connect",
        })
    }
}

impl Scenario {
    /// How many clients a run uses unless told otherwise.
    pub fn default_clients(self) -> usize {
        match self {
            Scenario::Burst => 50,
            Scenario::Rate => 100,
            Scenario::Idle => 1000,
            Scenario::Connect => 2000,
        }
    }
}

/// Everything a run needs, checked by [`Settings::validate`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// What kind of load.
    pub scenario: Scenario,
    /// The server, loopback unless the user allowed otherwise (see [`resolve_target`]); more
    /// than one for the nodes of one cluster, the clients spread over them by
    /// [`Settings::server_of`].
    pub addrs: Vec<SocketAddr>,
    /// How many connections.
    pub clients: usize,
    /// Burst: messages each client sends.
    pub messages: u64,
    /// Bytes of each message's payload, without the line end.
    pub size: usize,
    /// Rate: messages per second over all clients together.
    pub rate: u64,
    /// Rate: how long to send for.
    pub duration: Duration,
    /// Idle: how long to hold the connections once all have joined.
    pub hold: Duration,
    /// The wire mode the settings below are for.
    pub mode: WireMode,
    /// How to join, say and recognise the welcome.
    pub wire: Wire,
    /// Client `i` is named `{name_prefix}{i}`.
    pub name_prefix: String,
    /// How many rooms the clients are spread over (0: none, everyone stays where joining puts
    /// them); see [`Settings::room_of`].
    pub rooms: usize,
    /// Room `r` is named `{room_prefix}{r}`.
    pub room_prefix: String,
    /// The server's process ids (one per node of a cluster), to read their CPU time and memory
    /// from /proc.
    pub server_pids: Vec<u32>,
    /// The longest the whole run may take.
    pub timeout: Duration,
    /// Most connections connecting or joining at once.
    pub connect_batch: usize,
    /// What the server is called in the report (e.g. `chatd`, `bare relay`).
    pub label: String,
    /// Every client speaks TLS, with sessions made from this.
    pub tls: Option<TlsClient>,
    /// Connect: what each connection sends once it is connected (and its handshake is under way),
    /// before it waits for the server's first line; may be empty.
    pub connect_send: Vec<u8>,
}

/// A setting that cannot work, named by its flag.
#[derive(Debug, PartialEq, Eq)]
pub struct SettingsError {
    /// The flag, e.g. `--size`.
    pub flag: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for SettingsError {}

/// The most clients a run may have: sender ids are five hex digits in the payload marker.
const MAX_CLIENTS: usize = 0xf_ffff;
/// The most messages one client may send: sequence numbers are eight hex digits.
const MAX_MESSAGES: u64 = 0xffff_ffff;
/// The longest run: send times are twelve hex digits of nanoseconds (78 hours); a day is plenty.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The largest payload.
const MAX_SIZE: usize = 1 << 20;

impl Settings {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let error = |flag, reason: String| Err(SettingsError { flag, reason });
        if self.addrs.is_empty() {
            return error("--addr", "no server to load".into());
        }
        let least_clients = match self.scenario {
            Scenario::Burst | Scenario::Rate => 2,
            Scenario::Idle | Scenario::Connect => 1,
        };
        if self.clients < least_clients || self.clients > MAX_CLIENTS {
            return error(
                "--clients",
                format!(
                    "a {} run needs {least_clients} to {MAX_CLIENTS} clients",
                    self.scenario
                ),
            );
        }
        if self.scenario == Scenario::Burst && !(1..=MAX_MESSAGES).contains(&self.messages) {
            return error("--messages", format!("must be 1 to {MAX_MESSAGES}"));
        }
        if !(MAX_MARKER_LEN..=MAX_SIZE).contains(&self.size) {
            return error(
                "--size",
                format!(
                    "must be {MAX_MARKER_LEN} to {MAX_SIZE} bytes (the payload carries a marker)"
                ),
            );
        }
        if self.scenario == Scenario::Rate {
            if self.rate == 0 {
                return error("--rate", "must be at least 1 message per second".into());
            }
            if self.duration.is_zero() {
                return error("--duration", "must be more than 0 seconds".into());
            }
            if self.planned_per_client() > MAX_MESSAGES {
                return error("--rate", "too many messages per client for one run".into());
            }
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return error(
                "--timeout",
                "must be more than 0 and at most 86400 seconds".into(),
            );
        }
        if self.connect_batch == 0 {
            return error("--connect-batch", "must be at least 1".into());
        }
        if self.rooms > 0 {
            // A burst or rate run needs someone in every room to hear what is said there.
            let most = match self.scenario {
                Scenario::Burst | Scenario::Rate => self.clients / 2,
                Scenario::Idle => self.clients,
                Scenario::Connect => 0,
            };
            if self.rooms > most {
                return error(
                    "--rooms",
                    format!(
                        "{} clients fill at most {most} rooms in a {} run{}",
                        self.clients,
                        self.scenario,
                        match self.scenario {
                            Scenario::Idle => "",
                            Scenario::Connect => " (its connections join no room)",
                            Scenario::Burst | Scenario::Rate => " (two members each at least)",
                        }
                    ),
                );
            }
            match &self.wire {
                Wire::Framed => {
                    return error("--rooms", "is for --mode text and ws only (for now)".into());
                }
                Wire::Text(text) if text.room_join.holes() == 0 => {
                    return error(
                        "--room-template",
                        "must contain {room} at least once".into(),
                    );
                }
                Wire::Text(_) | Wire::Ws(_) => {}
            }
        }
        if self.scenario == Scenario::Connect && self.mode != WireMode::Text {
            return error(
                "--mode",
                "a connect run waits for the server's first line: text mode only".into(),
            );
        }
        let no_payload = match &self.wire {
            Wire::Text(text) => text.say.holes() == 0,
            Wire::Framed | Wire::Ws(_) => false,
        };
        if no_payload {
            return error(
                "--say-template",
                "must contain {payload} at least once".into(),
            );
        }
        Ok(())
    }

    /// Messages each client sends at most: the burst's count, or its share of the rate's total.
    pub fn planned_per_client(&self) -> u64 {
        match self.scenario {
            Scenario::Burst => self.messages,
            Scenario::Rate => self.rate_total().div_ceil(self.clients.max(1) as u64),
            Scenario::Idle | Scenario::Connect => 0,
        }
    }

    /// The room client `i` joins, if the clients are spread over rooms: `i % rooms`, so the
    /// first `rooms` clients are each the first member of their room.
    pub fn room_of(&self, i: usize) -> Option<usize> {
        (self.rooms > 0).then(|| i % self.rooms)
    }

    /// Which of [`Settings::addrs`] client `i` connects to: round robin over the servers, by
    /// room when there are rooms (`(i / rooms) % servers`), so that every room has members on
    /// every server and a line crosses between them.
    pub fn server_of(&self, i: usize) -> usize {
        let servers = self.addrs.len().max(1);
        (i / self.rooms.max(1)) % servers
    }

    /// The address client `i` connects to.
    pub fn addr_of(&self, i: usize) -> SocketAddr {
        self.addrs[self.server_of(i) % self.addrs.len()]
    }

    /// The name of room `r`.
    pub fn room_name(&self, r: usize) -> String {
        format!("{}{r}", self.room_prefix)
    }

    /// How many clients say the probe: the first member of each room (client 0 without rooms).
    pub fn probers(&self) -> usize {
        self.rooms.clamp(1, self.clients.max(1))
    }

    /// Each client's group for the delivery accounting: its room (0 for all without rooms).
    pub fn groups(&self) -> Vec<u32> {
        (0..self.clients)
            .map(|i| self.room_of(i).unwrap_or(0) as u32)
            .collect()
    }

    /// Rate: messages sent over the whole run.
    pub fn rate_total(&self) -> u64 {
        (self.rate as f64 * self.duration.as_secs_f64()).round() as u64
    }
}

/// Resolves `text` (`HOST:PORT`) to the address to load, refusing one that is not loopback unless
/// `allow_remote`: a load run is a flood, and should not leave the machine by accident.
pub fn resolve_target(text: &str, allow_remote: bool) -> Result<SocketAddr, SettingsError> {
    let error = |reason: String| SettingsError {
        flag: "--addr",
        reason,
    };
    let addr = text
        .to_socket_addrs()
        .map_err(|e| error(format!("cannot resolve {text:?}: {e}")))?
        .next()
        .ok_or_else(|| error(format!("{text:?} resolves to no address")))?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(error(format!(
            "{addr} is not a loopback address; pass --allow-remote to load another machine"
        )));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::wire::{Template, TextWire};

    fn settings(scenario: Scenario) -> Settings {
        Settings {
            scenario,
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 3001))],
            clients: scenario.default_clients(),
            messages: 2000,
            size: 64,
            rate: 500,
            duration: Duration::from_secs(10),
            hold: Duration::from_secs(2),
            mode: WireMode::Text,
            wire: Wire::Text(TextWire {
                join: Template::parse("{name}\\n", "{name}"),
                say: Template::parse("{payload}\\n", "{payload}"),
                welcome: Some(b"[*] Welcome".to_vec()),
                ..TextWire::default()
            }),
            name_prefix: "load".into(),
            rooms: 0,
            room_prefix: "#load".into(),
            server_pids: Vec::new(),
            timeout: Duration::from_secs(60),
            connect_batch: 100,
            label: "chatd".into(),
            tls: None,
            connect_send: Vec::new(),
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        for scenario in [
            Scenario::Burst,
            Scenario::Rate,
            Scenario::Idle,
            Scenario::Connect,
        ] {
            assert_eq!(settings(scenario).validate(), Ok(()), "{scenario}");
        }
    }

    #[test]
    fn errors_name_the_flag() {
        type Change = fn(&mut Settings);
        let cases: [(&str, Change); 6] = [
            ("--clients", |s| s.clients = 1),
            ("--size", |s| s.size = 10),
            ("--messages", |s| s.messages = 0),
            ("--timeout", |s| s.timeout = Duration::ZERO),
            ("--connect-batch", |s| s.connect_batch = 0),
            ("--say-template", |s| {
                s.wire = Wire::Text(TextWire {
                    join: Template::parse("{name}\\n", "{name}"),
                    say: Template::parse("hello\\n", "{payload}"),
                    welcome: None,
                    ..TextWire::default()
                })
            }),
        ];
        for (flag, change) in cases {
            let mut s = settings(Scenario::Burst);
            change(&mut s);
            assert_eq!(s.validate().map_err(|e| e.flag), Err(flag));
        }
        let mut s = settings(Scenario::Rate);
        s.rate = 0;
        assert_eq!(s.validate().map_err(|e| e.flag), Err("--rate"));
    }

    #[test]
    fn rooms_spread_the_clients_round_robin_and_need_two_members_to_chat() {
        let mut s = settings(Scenario::Burst);
        assert_eq!(s.room_of(7), None);
        assert_eq!(s.probers(), 1);
        assert_eq!(s.groups(), vec![0; 50]);
        s.rooms = 25;
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.room_of(0), Some(0));
        assert_eq!(s.room_of(26), Some(1));
        assert_eq!(s.room_name(3), "#load3");
        assert_eq!(s.probers(), 25);
        let groups = s.groups();
        assert_eq!((groups[24], groups[25], groups[49]), (24, 0, 24));
        s.rooms = 26;
        assert_eq!(s.validate().map_err(|e| e.flag), Err("--rooms"));
        // Idle clients may each have a room of their own.
        let mut idle = settings(Scenario::Idle);
        idle.rooms = idle.clients;
        assert_eq!(idle.validate(), Ok(()));
        idle.rooms += 1;
        assert_eq!(idle.validate().map_err(|e| e.flag), Err("--rooms"));
        // New connections come and go at once: they join no room.
        let mut connect = settings(Scenario::Connect);
        connect.rooms = 1;
        assert_eq!(connect.validate().map_err(|e| e.flag), Err("--rooms"));
    }

    #[test]
    fn rooms_are_joined_with_a_template_naming_the_room_in_text_mode_only() {
        let mut s = settings(Scenario::Burst);
        s.rooms = 2;
        s.wire = Wire::Text(TextWire {
            room_join: Template::parse("/join #all\\n", "{room}"),
            ..TextWire::default()
        });
        assert_eq!(s.validate().map_err(|e| e.flag), Err("--room-template"));
        s.wire = Wire::Framed;
        let refused = s.validate().unwrap_err();
        assert_eq!(refused.flag, "--rooms");
        assert!(refused.reason.contains("text"), "{refused}");
    }

    #[test]
    fn a_rate_run_spreads_its_messages_over_the_clients() {
        let s = settings(Scenario::Rate);
        assert_eq!(s.rate_total(), 5000);
        assert_eq!(s.planned_per_client(), 50);
    }

    #[test]
    fn only_loopback_targets_are_taken_unless_allowed() {
        assert_eq!(
            resolve_target("127.0.0.1:3001", false),
            Ok(SocketAddr::from(([127, 0, 0, 1], 3001)))
        );
        assert!(resolve_target("[::1]:3001", false).is_ok());
        let refused = resolve_target("192.0.2.7:3001", false).unwrap_err();
        assert!(refused.reason.contains("--allow-remote"), "{refused}");
        assert!(resolve_target("192.0.2.7:3001", true).is_ok());
        assert_eq!(resolve_target("no port", false).unwrap_err().flag, "--addr");
    }

    #[test]
    fn clients_are_spread_over_the_servers_so_that_every_room_spans_them() {
        let mut s = settings(Scenario::Burst);
        let (a, b) = (
            SocketAddr::from(([127, 0, 0, 1], 4001)),
            SocketAddr::from(([127, 0, 0, 1], 4002)),
        );
        s.addrs = vec![a, b];
        s.clients = 8;
        let servers: Vec<usize> = (0..8).map(|i| s.server_of(i)).collect();
        assert_eq!(servers, [0, 1, 0, 1, 0, 1, 0, 1]);
        s.rooms = 2;
        let spread: Vec<(usize, usize)> = (0..8)
            .map(|i| (s.room_of(i).unwrap(), s.server_of(i)))
            .collect();
        assert_eq!(
            spread,
            [
                (0, 0),
                (1, 0),
                (0, 1),
                (1, 1),
                (0, 0),
                (1, 0),
                (0, 1),
                (1, 1)
            ]
        );
        assert_eq!(s.addr_of(2), b);
        s.addrs.clear();
        assert_eq!(s.validate().unwrap_err().flag, "--addr");
    }
}
