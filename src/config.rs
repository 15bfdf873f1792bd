//! Validated server settings, built by the binary from its command-line flags.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use time::UtcOffset;

use crate::proto::{framed, Limits};

/// The smallest frame limit allowed: a handshake and a short message must fit.
pub const MIN_FRAME: usize = 1024;

/// How many messages a client may send in a burst, and how fast the allowance refills.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodPolicy {
    /// Messages allowed at once.
    pub burst: f64,
    /// Messages per second after the burst.
    pub per_second: f64,
}

impl Default for FloodPolicy {
    fn default() -> FloodPolicy {
        FloodPolicy {
            burst: 10.0,
            per_second: 5.0,
        }
    }
}

/// Everything the server needs to know to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to listen for IRC clients only (`--listen-irc`), if anywhere.
    pub listen_irc: Option<SocketAddr>,
    /// Whether to read host commands from stdin.
    pub console: bool,
    /// Most connections at once, named or not.
    pub max_clients: usize,
    /// Most connections from one address (loopback exempt unless `limit_loopback`).
    pub max_per_ip: usize,
    /// Whether `max_per_ip` applies to loopback addresses too.
    pub limit_loopback: bool,
    /// Most bytes queued for one client before it is cut as a slow consumer.
    pub max_outbuf: usize,
    /// Bytes queued for one client that may last no longer than `outbuf_soft_time`.
    pub outbuf_soft: usize,
    /// How long a client may stay over `outbuf_soft`.
    pub outbuf_soft_time: std::time::Duration,
    /// Flood control: a burst, then a steady rate of messages per client; `None` turns it off.
    pub flood: Option<FloodPolicy>,
    /// How long a connection may take to give its name (and password) before it is closed.
    pub name_timeout: std::time::Duration,
    /// How long a new connection (or a new TLS session) that has sent nothing is waited for
    /// before it is taken for a text client and greeted: TLS and IRC clients speak first.
    pub greeting_delay: std::time::Duration,
    /// How long a framed or web client may be silent before it is sent a keepalive ping.
    pub ping_interval: std::time::Duration,
    /// Keepalive pings a framed or web client may leave unanswered before it is closed.
    pub ping_misses: u8,
    /// Input size limits.
    pub limits: Limits,
    /// The local offset from UTC, read once at start-up, for `HH:MM:SS` stamps.
    pub utc_offset: UtcOffset,
    /// Where accounts and bans are kept.
    pub data_dir: PathBuf,
    /// Whether only registered names may join.
    pub require_account: bool,
    /// Whether guests may register their name with `/register`.
    pub allow_register: bool,
    /// How many recent chat lines a joining user is shown (0: none).
    pub history: usize,
    /// Whether rooms' lines and direct messages are kept in `DATA_DIR/history.sqlite` (on by
    /// default; `--no-history-store` keeps them in memory only).
    pub history_store: bool,
    /// Lines and direct messages older than this many days are deleted from the store (0:
    /// never), at start and every hour.
    pub history_days: u32,
    /// The history file's name in the data directory: [`crate::history::store::HISTORY_FILE`],
    /// or one of its own for each node `--nodes` starts on one data directory (every node keeps
    /// every line, so one file between them would hold each line several times).
    pub history_file: String,
    /// The rooms: the default room, limits, the persistent rooms.
    pub rooms: crate::core::rooms::RoomConfig,
    /// TLS, if the server offers it.
    pub tls: Option<TlsSettings>,
    /// `--web-host` names: when any is given, HTTP requests for other host names are refused.
    pub web_hosts: Vec<String>,
    /// `--web-origin` entries: pages of these origins may open the chat's WebSocket too.
    pub web_origins: Vec<String>,
    /// `--metrics-listen`: where `/metrics` and `/healthz` are served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The server's IRC name (`--server-name`; the host name by default).
    pub server_name: String,
    /// Whether IRC users are shown the default room as joined on registering (not with
    /// `--irc-no-autojoin`).
    pub irc_autojoin: bool,
    /// The cluster this server is a node of (`--cluster`), if any.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// How the server offers TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// Where its certificate and key come from.
    pub cert: CertSource,
    /// Refuse plain connections (with one line saying how to connect securely).
    pub required: bool,
    /// Take passwords over plain connections too.
    pub allow_plain_passwords: bool,
}

/// Where the server's certificate and key come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files given by the operator: the full chain, and its private key.
    Files {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A key and certificate made in the data directory on first start, kept for later starts.
    SelfSigned,
}

/// The TLS flags as given, before [`TlsFlags::settings`] checks that they go together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFlags {
    /// `--tls-cert FILE`.
    pub cert: Option<PathBuf>,
    /// `--tls-key FILE`.
    pub key: Option<PathBuf>,
    /// `--tls-self-signed`.
    pub self_signed: bool,
    /// `--tls-required`.
    pub required: bool,
    /// `--allow-plain-passwords`.
    pub allow_plain_passwords: bool,
}

/// How to turn TLS on, as said in the errors of the flags that need it.
const TLS_ON: &str = "--tls-cert FILE --tls-key FILE, or --tls-self-signed";

impl TlsFlags {
    /// The settings the flags make (`None`: no TLS), or the first flag that cannot go with the
    /// others: the certificate and key come together, a self-signed certificate is not given
    /// as files, and `--tls-required` and `--allow-plain-passwords` only mean something with TLS.
    pub fn settings(&self) -> Result<Option<TlsSettings>, ConfigError> {
        for (flag, path) in [("--tls-cert", &self.cert), ("--tls-key", &self.key)] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::new(
                    flag,
                    "",
                    "the path is empty; name a PEM file",
                ));
            }
        }
        let shown = |path: &PathBuf| path.display().to_string();
        let cert = match (&self.cert, &self.key, self.self_signed) {
            (Some(cert), _, true) => {
                let allowed = "cannot go with --tls-self-signed: give your own certificate or have one made, not both";
                return Err(ConfigError::new("--tls-cert", shown(cert), allowed));
            }
            (None, Some(key), true) => {
                let allowed = "cannot go with --tls-self-signed, which makes its own key";
                return Err(ConfigError::new("--tls-key", shown(key), allowed));
            }
            (Some(cert), None, false) => {
                let allowed = "needs --tls-key FILE too, the private key of that certificate";
                return Err(ConfigError::new("--tls-cert", shown(cert), allowed));
            }
            (None, Some(key), false) => {
                let allowed = "needs --tls-cert FILE too, the certificate chain of that key";
                return Err(ConfigError::new("--tls-key", shown(key), allowed));
            }
            (Some(cert), Some(key), false) => CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (None, None, true) => CertSource::SelfSigned,
            (None, None, false) => {
                for (flag, on) in [
                    ("--tls-required", self.required),
                    ("--allow-plain-passwords", self.allow_plain_passwords),
                ] {
                    if on {
                        let allowed = format!("needs TLS on: add {TLS_ON}");
                        return Err(ConfigError::new(flag, "on", allowed));
                    }
                }
                return Ok(None);
            }
        };
        if self.required && self.allow_plain_passwords {
            let allowed =
                "cannot go with --tls-required: no password can come over a plain connection then";
            return Err(ConfigError::new("--allow-plain-passwords", "on", allowed));
        }
        Ok(Some(TlsSettings {
            cert,
            required: self.required,
            allow_plain_passwords: self.allow_plain_passwords,
        }))
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            listen_irc: None,
            console: true,
            max_clients: 1024,
            max_per_ip: 16,
            limit_loopback: false,
            max_outbuf: 1024 * 1024,
            outbuf_soft: 256 * 1024,
            outbuf_soft_time: std::time::Duration::from_secs(10),
            flood: Some(FloodPolicy::default()),
            name_timeout: std::time::Duration::from_secs(30),
            greeting_delay: std::time::Duration::from_millis(200),
            ping_interval: std::time::Duration::from_secs(60),
            ping_misses: 2,
            limits: Limits::default(),
            utc_offset: UtcOffset::UTC,
            data_dir: PathBuf::from("chatd-data"),
            require_account: false,
            allow_register: true,
            history: 20,
            history_store: true,
            history_days: 365,
            history_file: crate::history::store::HISTORY_FILE.to_owned(),
            rooms: crate::core::rooms::RoomConfig::default(),
            tls: None,
            web_hosts: Vec::new(),
            server_name: host_name(),
            irc_autojoin: true,
            cluster: None,
            web_origins: Vec::new(),
            metrics_listen: None,
        }
    }
}

/// The port chatd listens on when `--listen` names none.
pub const DEFAULT_PORT: u16 = 3001;
/// The range of `--name-timeout`, in seconds.
pub const NAME_TIMEOUT_SECS: (u64, u64) = (1, 3600);
/// The range of `--greeting-delay`, in milliseconds.
pub const GREETING_DELAY_MS: (u128, u128) = (10, 5000);
/// The range of `--ping-interval`, in seconds.
pub const PING_INTERVAL_SECS: (u64, u64) = (1, 86_400);
/// The range of `--ping-misses`.
pub const PING_MISSES: (u8, u8) = (1, u8::MAX);
/// The range of `--outbuf-soft-secs`.
pub const OUTBUF_SOFT_SECS: (u64, u64) = (1, 3600);
/// The range of `--flood-burst`, in messages.
pub const FLOOD_BURST: (f64, f64) = (1.0, 10_000.0);
/// The range of `--flood-rate`, in messages a second.
pub const FLOOD_RATE: (f64, f64) = (0.01, 10_000.0);
/// The most lines `--history` may keep.
pub const MAX_HISTORY: usize = 1000;
/// The range of `--history-days` (0: keep forever).
pub const HISTORY_DAYS: (u32, u32) = (0, 36_500);
/// The smallest `--max-outbuf`: one help text must fit.
pub const MIN_OUTBUF: usize = 64 * 1024;

/// A setting that cannot work: the flag, the value given, and what is allowed.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag, e.g. `--max-clients`.
    pub flag: &'static str,
    /// The value as given.
    pub value: String,
    /// What the flag allows, e.g. `must be at least 1`.
    pub allowed: String,
}

impl ConfigError {
    /// The error for `flag` given `value`, which is not `allowed`.
    pub fn new(flag: &'static str, value: impl fmt::Display, allowed: impl Into<String>) -> Self {
        ConfigError {
            flag,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid value '{}' for {}: {}",
            self.value, self.flag, self.allowed
        )
    }
}

impl std::error::Error for ConfigError {}

/// Checks that `value` is in `range`, else names the flag, the value and the range.
fn check_range<T: PartialOrd + fmt::Display + Copy>(
    flag: &'static str,
    value: T,
    (low, high): (T, T),
    unit: &str,
) -> Result<(), ConfigError> {
    if value >= low && value <= high {
        return Ok(());
    }
    Err(ConfigError::new(
        flag,
        value,
        format!("must be from {low} to {high}{unit}"),
    ))
}

impl Config {
    /// Checks that every setting can work, naming the first that cannot by its flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_clients == 0 {
            return Err(ConfigError::new("--max-clients", 0, "must be at least 1"));
        }
        if self.max_per_ip == 0 {
            return Err(ConfigError::new("--max-per-ip", 0, "must be at least 1"));
        }
        if let Some(flood) = &self.flood {
            let rate_hint = " messages a second (--no-flood-control turns it off)";
            check_range("--flood-burst", flood.burst, FLOOD_BURST, " messages")?;
            check_range("--flood-rate", flood.per_second, FLOOD_RATE, rate_hint)?;
        }
        check_range(
            "--max-frame",
            self.limits.max_frame,
            (MIN_FRAME, framed::MAX_FRAME_CAP),
            " bytes, so that every frame starts with 0x00",
        )?;
        if self.limits.max_discard < self.limits.max_line {
            return Err(ConfigError::new(
                "--max-line-discard",
                self.limits.max_discard,
                format!(
                    "must be at least the line limit, {} bytes",
                    self.limits.max_line
                ),
            ));
        }
        if self.max_outbuf < MIN_OUTBUF {
            return Err(ConfigError::new(
                "--max-outbuf",
                self.max_outbuf,
                format!("must be at least {MIN_OUTBUF} bytes, or one help text would not fit"),
            ));
        }
        if !valid_server_name(&self.server_name) {
            return Err(ConfigError::new(
                "--server-name",
                &self.server_name,
                "must be 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit",
            ));
        }
        if self.outbuf_soft == 0 {
            return Err(ConfigError::new(
                "--outbuf-soft",
                0,
                "must be at least 1 byte (it is capped at --max-outbuf)",
            ));
        }
        let secs = " seconds";
        check_range(
            "--outbuf-soft-secs",
            self.outbuf_soft_time.as_secs(),
            OUTBUF_SOFT_SECS,
            secs,
        )?;
        check_range(
            "--name-timeout",
            self.name_timeout.as_secs(),
            NAME_TIMEOUT_SECS,
            secs,
        )?;
        check_range(
            "--greeting-delay",
            self.greeting_delay.as_millis(),
            GREETING_DELAY_MS,
            " ms",
        )?;
        check_range(
            "--ping-interval",
            self.ping_interval.as_secs(),
            PING_INTERVAL_SECS,
            secs,
        )?;
        check_range("--ping-misses", self.ping_misses, PING_MISSES, " pings")?;
        if self.greeting_delay >= self.name_timeout {
            return Err(ConfigError::new(
                "--greeting-delay",
                self.greeting_delay.as_millis(),
                "must be shorter than --name-timeout",
            ));
        }
        if self.history > MAX_HISTORY {
            return Err(ConfigError::new(
                "--history",
                self.history,
                format!("must be from 0 to {MAX_HISTORY} lines"),
            ));
        }
        check_range(
            "--history-days",
            self.history_days,
            HISTORY_DAYS,
            " days (0 keeps every line)",
        )?;
        if crate::names::validate_room_name(&self.rooms.default_room).is_err() {
            return Err(ConfigError::new(
                "--default-room",
                &self.rooms.default_room,
                "must be # then 1 to 32 letters, digits, '_', '-' or '.'",
            ));
        }
        for (flag, value) in [
            ("--max-rooms", self.rooms.max_rooms),
            ("--max-rooms-per-user", self.rooms.max_rooms_per_user),
        ] {
            if value == 0 {
                let allowed = "must be at least 1 (the default room counts)";
                return Err(ConfigError::new(flag, value, allowed));
            }
        }
        for host in &self.web_hosts {
            if !valid_web_host(host) {
                let allowed = "must be a host name or address as a browser's Host header gives it \
                               (letters, digits, '-', '.', or an IPv6 address in brackets), without a port";
                return Err(ConfigError::new("--web-host", host, allowed));
            }
        }
        for origin in &self.web_origins {
            if !valid_web_origin(origin) {
                let allowed =
                    "must be an origin as a browser sends it: http:// or https://, a host \
                               and maybe :PORT, no path (e.g. https://chat.example.org)";
                return Err(ConfigError::new("--web-origin", origin, allowed));
            }
        }
        Ok(())
    }
}

/// Whether `host` is a host name, an IPv4 address or a bracketed IPv6 address, with no port.
/// The machine's host name, the IRC server name unless `--server-name` says otherwise; `chatd`
/// when it is not a usable one.
pub fn host_name() -> String {
    let uname = rustix::system::uname();
    match uname.nodename().to_str() {
        Ok(host) if valid_server_name(host) => host.to_owned(),
        _ => "chatd".to_owned(),
    }
}

/// Whether `name` may be an IRC server name: 1 to 63 letters, digits, '.', '-' or '_',
/// starting with a letter or digit (it is the source of every line the server sends).
fn valid_server_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn valid_web_host(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether `origin` is `http://HOST[:PORT]` or `https://HOST[:PORT]`.
fn valid_web_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !authority.ends_with(']') => {
            (host, Some(port))
        }
        _ => (authority, None),
    };
    valid_web_host(host) && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// The addresses `--listen TEXT` names, in the resolver's order: `HOST:PORT`, `[IPV6]:PORT`, or
/// a host, IPv4 or IPv6 address alone (port 3001). A host name may resolve to several.
pub fn listen_addrs(text: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    addrs_of("--listen", text, DEFAULT_PORT)
}

/// The port `--listen-irc` takes for a host or address given alone: IRC's.
pub const DEFAULT_IRC_PORT: u16 = 6667;

/// [`listen_addrs`] for `--listen-irc`: a host or address alone is port 6667.
pub fn listen_irc_addrs(text: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    addrs_of("--listen-irc", text, DEFAULT_IRC_PORT)
}

fn addrs_of(
    flag: &'static str,
    text: &str,
    default_port: u16,
) -> Result<Vec<SocketAddr>, ConfigError> {
    let allowed = |why: &str| {
        ConfigError::new(
            flag,
            text,
            format!(
                "{why}; give HOST:PORT, [IPV6]:PORT, or a host or address alone for port {default_port}"
            ),
        )
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, default_port)]);
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| allowed("the port must be a number from 0 to 65535"))?;
            (host, port)
        }
        None => (text, default_port),
    };
    if host.is_empty() || host.contains(':') {
        return Err(allowed("not an address"));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| allowed(&format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(allowed(&format!("{host} has no address")));
    }
    Ok(addrs)
}

/// The addresses `--metrics-listen TEXT` names: `HOST:PORT` or `[IPV6]:PORT` (a port is needed:
/// there is no usual one), a host name resolving maybe to several.
pub fn metrics_addrs(text: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let allowed = |why: &str| {
        let allowed = format!("{why}; give HOST:PORT or [IPV6]:PORT, e.g. 127.0.0.1:3002");
        ConfigError::new("--metrics-listen", text, allowed)
    };
    let Some((host, port)) = text
        .rsplit_once(':')
        .filter(|(host, _)| !host.contains(':'))
    else {
        return Err(allowed("a port is needed"));
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| allowed("the port must be a number from 0 to 65535"))?;
    if host.is_empty() {
        return Err(allowed(
            "a host is needed (127.0.0.1 keeps the metrics to this machine)",
        ));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| allowed(&format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(allowed(&format!("{host} has no address")));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn refused(config: Config) -> ConfigError {
        config.validate().expect_err("refused")
    }

    #[test]
    fn errors_name_the_flag_the_value_and_what_is_allowed() {
        let error = refused(Config {
            max_clients: 0,
            ..Config::default()
        });
        assert_eq!(
            error.to_string(),
            "invalid value '0' for --max-clients: must be at least 1"
        );
        let error = refused(Config {
            max_outbuf: 10,
            ..Config::default()
        });
        assert_eq!((error.flag, error.value.as_str()), ("--max-outbuf", "10"));
        for max_frame in [MIN_FRAME - 1, framed::MAX_FRAME_CAP + 1] {
            let error = refused(Config {
                limits: Limits {
                    max_frame,
                    ..Limits::default()
                },
                ..Config::default()
            });
            assert_eq!(error.flag, "--max-frame");
            assert!(
                error.allowed.starts_with("must be from 1024 to "),
                "{error}"
            );
        }
        let config = Config {
            limits: Limits {
                max_discard: Limits::default().max_line - 1,
                ..Limits::default()
            },
            ..Config::default()
        };
        assert_eq!(config.validate().unwrap_err().flag, "--max-line-discard");
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn web_hosts_and_origins_must_be_what_a_browser_sends() {
        let web = |hosts: &[&str], origins: &[&str]| Config {
            web_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            web_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..Config::default()
        };
        let hosts = [
            "chat.example.org",
            "localhost",
            "192.168.1.20",
            "[::1]",
            "a-b.c",
        ];
        let origins = [
            "https://chat.example.org",
            "http://192.168.1.20:3001",
            "http://[::1]:3001",
        ];
        assert_eq!(web(&hosts, &origins).validate(), Ok(()));
        for bad in [
            "",
            "chat.lan:3001",
            "http://chat.lan",
            "a..b",
            "[zz]",
            "two words",
        ] {
            assert_eq!(refused(web(&[bad], &[])).flag, "--web-host", "{bad}");
        }
        for bad in [
            "chat.lan",
            "https://chat.lan/",
            "https://chat.lan/page",
            "ftp://x",
            "http://x:0",
            "http://x:99999",
        ] {
            assert_eq!(refused(web(&[], &[bad])).flag, "--web-origin", "{bad}");
        }
    }

    #[test]
    fn the_flood_rate_and_burst_are_told_apart() {
        let flood = |burst, per_second| Config {
            flood: Some(FloodPolicy { burst, per_second }),
            ..Config::default()
        };
        assert_eq!(refused(flood(10.0, 0.0)).flag, "--flood-rate");
        assert_eq!(refused(flood(10.0, f64::NAN)).flag, "--flood-rate");
        assert_eq!(refused(flood(0.5, 5.0)).flag, "--flood-burst");
        assert_eq!(refused(flood(f64::INFINITY, 5.0)).flag, "--flood-burst");
        let off = Config {
            flood: None,
            ..Config::default()
        };
        assert_eq!(off.validate(), Ok(()));
    }

    #[test]
    fn a_greeting_delay_past_its_range_or_the_name_timeout_is_refused() {
        let too_long = refused(Config {
            greeting_delay: Duration::from_millis(5001),
            ..Config::default()
        });
        assert_eq!(
            too_long.to_string(),
            "invalid value '5001' for --greeting-delay: must be from 10 to 5000 ms"
        );
        let past_timeout = refused(Config {
            greeting_delay: Duration::from_millis(2000),
            name_timeout: Duration::from_secs(1),
            ..Config::default()
        });
        assert_eq!(
            past_timeout.to_string(),
            "invalid value '2000' for --greeting-delay: must be shorter than --name-timeout"
        );
    }

    #[test]
    fn timeouts_of_zero_or_past_their_range_are_refused() {
        let error = refused(Config {
            name_timeout: Duration::ZERO,
            ..Config::default()
        });
        assert_eq!(
            error.to_string(),
            "invalid value '0' for --name-timeout: must be from 1 to 3600 seconds"
        );
        let error = refused(Config {
            ping_interval: Duration::from_secs(u64::MAX),
            ..Config::default()
        });
        assert_eq!(error.flag, "--ping-interval");
        let error = refused(Config {
            outbuf_soft_time: Duration::ZERO,
            ..Config::default()
        });
        assert_eq!(error.flag, "--outbuf-soft-secs");
        let error = refused(Config {
            ping_misses: 0,
            ..Config::default()
        });
        assert_eq!(error.flag, "--ping-misses");
        let error = refused(Config {
            history: MAX_HISTORY + 1,
            ..Config::default()
        });
        assert_eq!(error.flag, "--history");
    }

    #[test]
    fn listen_takes_addresses_hosts_and_a_missing_port() {
        let v4 = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT));
        assert_eq!(listen_addrs("127.0.0.1"), Ok(vec![v4]));
        assert_eq!(
            listen_addrs("127.0.0.1:0"),
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], 0))])
        );
        let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, DEFAULT_PORT));
        assert_eq!(listen_addrs("::1"), Ok(vec![v6]));
        assert_eq!(listen_addrs("[::1]"), Ok(vec![v6]));
        let local = listen_addrs("localhost:4000").expect("localhost resolves");
        assert!(local
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 4000));
        let error = listen_addrs("localhost:99999").unwrap_err();
        assert_eq!(error.flag, "--listen");
        assert_eq!(error.value, "localhost:99999");
        assert!(error.allowed.contains("port must be a number"), "{error}");
        assert!(listen_addrs(":3001").is_err());
        assert!(listen_addrs("").is_err());
    }

    #[test]
    fn the_default_room_and_the_room_limits_are_checked() {
        let with_rooms = |rooms: crate::core::rooms::RoomConfig| Config {
            rooms,
            ..Config::default()
        };
        let base = crate::core::rooms::RoomConfig::default();
        for bad in ["lobby", "#", "#two words"] {
            let config = with_rooms(crate::core::rooms::RoomConfig {
                default_room: bad.into(),
                ..base.clone()
            });
            let error = config.validate().unwrap_err();
            assert_eq!((error.flag, error.value.as_str()), ("--default-room", bad));
        }
        let config = with_rooms(crate::core::rooms::RoomConfig {
            max_rooms: 0,
            ..base.clone()
        });
        assert_eq!(config.validate().unwrap_err().flag, "--max-rooms");
        let config = with_rooms(crate::core::rooms::RoomConfig {
            max_rooms_per_user: 0,
            ..base.clone()
        });
        assert_eq!(config.validate().unwrap_err().flag, "--max-rooms-per-user");
        assert_eq!(with_rooms(base).validate(), Ok(()));
    }

    #[test]
    fn the_metrics_address_needs_a_port_and_a_host() {
        let v4: SocketAddr = "127.0.0.1:3002".parse().unwrap();
        assert_eq!(metrics_addrs("127.0.0.1:3002"), Ok(vec![v4]));
        let v6: SocketAddr = "[::1]:0".parse().unwrap();
        assert_eq!(metrics_addrs("[::1]:0"), Ok(vec![v6]));
        let named = metrics_addrs("localhost:3002").expect("resolves");
        assert!(named
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 3002));
        for (bad, why) in [
            ("127.0.0.1", "a port is needed"),
            ("::1", "a port is needed"),
            (":3002", "a host is needed"),
            ("127.0.0.1:http", "the port must be a number"),
            ("127.0.0.1:70000", "the port must be a number"),
        ] {
            let error = metrics_addrs(bad).expect_err(bad);
            assert_eq!(
                (error.flag, error.value.as_str()),
                ("--metrics-listen", bad)
            );
            assert!(error.allowed.starts_with(why), "{bad}: {error}");
        }
    }

    #[test]
    fn tls_flags_go_together_or_name_the_one_that_cannot() {
        let path = |p: &str| Some(PathBuf::from(p));
        let flags = |cert, key, self_signed, required, allow_plain_passwords| TlsFlags {
            cert,
            key,
            self_signed,
            required,
            allow_plain_passwords,
        };
        assert_eq!(TlsFlags::default().settings(), Ok(None));
        let files = flags(path("c.pem"), path("k.pem"), false, true, false);
        let expected = TlsSettings {
            cert: CertSource::Files {
                cert: PathBuf::from("c.pem"),
                key: PathBuf::from("k.pem"),
            },
            required: true,
            allow_plain_passwords: false,
        };
        assert_eq!(files.settings(), Ok(Some(expected)));
        let made = flags(None, None, true, false, true).settings();
        let made = made.expect("valid").expect("TLS on");
        assert_eq!(
            (made.cert, made.allow_plain_passwords),
            (CertSource::SelfSigned, true)
        );
        for (bad, flag, value, allowed) in [
            (
                flags(path("c.pem"), None, false, false, false),
                "--tls-cert",
                "c.pem",
                "needs --tls-key",
            ),
            (
                flags(None, path("k.pem"), false, false, false),
                "--tls-key",
                "k.pem",
                "needs --tls-cert",
            ),
            (
                flags(path("c.pem"), path("k.pem"), true, false, false),
                "--tls-cert",
                "c.pem",
                "cannot go with --tls-self-signed",
            ),
            (
                flags(None, path("k.pem"), true, false, false),
                "--tls-key",
                "k.pem",
                "cannot go with --tls-self-signed",
            ),
            (
                flags(None, None, false, true, false),
                "--tls-required",
                "on",
                "needs TLS on",
            ),
            (
                flags(None, None, false, false, true),
                "--allow-plain-passwords",
                "on",
                "needs TLS on",
            ),
            (
                flags(None, None, true, true, true),
                "--allow-plain-passwords",
                "on",
                "cannot go with --tls-required",
            ),
            (
                flags(path(""), path("k.pem"), false, false, false),
                "--tls-cert",
                "",
                "the path is empty",
            ),
        ] {
            let error = bad.settings().expect_err("refused");
            assert_eq!((error.flag, error.value.as_str()), (flag, value), "{bad:?}");
            assert!(error.allowed.contains(allowed), "{error}");
        }
    }
}
