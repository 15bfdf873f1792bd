//! `chatd`: parse the flags, set up logging, bind, and hand over to the library.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;
use serde::{Deserialize, Serialize};
use simplelog::{CombinedLogger, LevelFilter, SharedLogger, WriteLogger};

use chatd::accounts::model::Role;
use chatd::accounts::store::{Store, StoreError};
use chatd::accounts::usercmd::{self, UserCommand, UserError};
use chatd::cluster::registry::ClusterRegistry;
use chatd::cluster::ClusterConfig;
use chatd::config::{ConfigError, FloodPolicy, TlsFlags};
use chatd::rooms::roomcmd::{self, RoomsCommand, RoomsError};
use chatd::rooms::RoomStore;
use chatd::server::roomfile;
use chatd::service::log::{JournalLogger, LogFile};
use chatd::service::settings::{self, SettingsFile, Unset};
use chatd::service::{nodes, notify};
use chatd::{config, service, tls, Config, Server};

/// Declares the server's settings, each once: as a flag of `Args` (its doc is the flag's help) and
/// as a key of the `--config` file in `Settings` (the flag without `--`), with its default.
///
/// Each setting is `NAME: FLAG_TYPE as SETTING_TYPE = DEFAULT` (the flag's type written as
/// `Option<T>`, `Vec<T>` or `bool`, which argh tells apart by their names): the flag's type says whether it
/// was given (`Option`, a switch's `bool`, a repeated flag's `Vec`), the setting's type is what
/// the server gets after the defaults, the file and the flags are laid over each other. A new
/// setting is one more entry here, its use in `server_config`, and its key in
/// contrib/chatd.toml (tests/config_file.rs checks that file against `chatd --help`).
macro_rules! settings {
    (
        $(#[$args_meta:meta])*
        struct $args:ident {
            $(
                $(#[$m:meta])*
                $name:ident : $flag:ident $(<$flag_of:ty>)? as $ty:ty = $default:expr,
            )*
        }
        other flags {
            $( $(#[$xm:meta])* $xname:ident : $xflag:ident $(<$xflag_of:ty>)?, )*
        }
    ) => {
        $(#[$args_meta])*
        #[derive(FromArgs, Serialize)]
        #[serde(rename_all = "kebab-case")]
        struct $args {
            $(
                $(#[$m])*
                #[serde(skip_serializing_if = "Unset::is_unset")]
                $name: $flag $(<$flag_of>)?,
            )*
            $( $(#[$xm])* #[serde(skip)] $xname: $xflag $(<$xflag_of>)?, )*
        }

        /// The effective settings: every key of the `--config` file, with its value.
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
        struct Settings {
            $( $name: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Settings {
                Settings { $( $name: $default, )* }
            }
        }

        impl Settings {
            /// Every key, in the order of `--help`.
            const KEYS: &[&str] = &[$( stringify!($name), )*];
        }
    };
}

settings! {
    /// A chat server for a team, a class or a LAN: talk to it with `nc HOST 3001`, the `chat` client or a browser at http://HOST:3001/.
    struct Args {
        /// address to listen on: HOST:PORT, or HOST for port 3001; a host name binds the first of its addresses that works (default 0.0.0.0:3001)
        #[argh(option)]
        listen: Option<String> as String = String::from("0.0.0.0:3001"),
        /// append a log of connections, names, kicks, drops and errors to this file (made mode 0600; SIGHUP opens it again)
        #[argh(option)]
        log_file: Option<String> as Option<String> = None,
        /// log level for --log-file (and the journal): off, error, warn, info, debug or trace (default info; debug logs chat text)
        #[argh(option)]
        log_level: Option<LogLevel> as LogLevel = LogLevel(LevelFilter::Info),
        /// do not read host commands from stdin
        #[argh(switch)]
        no_console: bool as bool = false,
        /// most connections at once, named or not (default 1024)
        #[argh(option, from_str_fn(whole))]
        max_clients: Option<usize> as usize = 1024,
        /// most connections from one address (default 16; loopback is exempt unless --limit-loopback)
        #[argh(option, from_str_fn(whole))]
        max_per_ip: Option<usize> as usize = 16,
        /// messages a client may send at once before flood control slows it (default 10)
        #[argh(option, from_str_fn(decimal))]
        flood_burst: Option<f64> as f64 = 10.0,
        /// messages per second a client may send after its burst (default 5)
        #[argh(option, from_str_fn(decimal))]
        flood_rate: Option<f64> as f64 = 5.0,
        /// turn flood control off (for load tests)
        #[argh(switch)]
        no_flood_control: bool as bool = false,
        /// apply --max-per-ip to loopback addresses too
        #[argh(switch)]
        limit_loopback: bool as bool = false,
        /// most bytes queued for a client that does not read before it is disconnected (default 1048576)
        #[argh(option, from_str_fn(whole))]
        max_outbuf: Option<usize> as usize = 1024 * 1024,
        /// directory of the accounts, bans and rooms files, created on first use (default ./chatd-data)
        #[argh(option)]
        data_dir: Option<PathBuf> as PathBuf = Config::default().data_dir,
        /// let only registered names join
        #[argh(switch)]
        require_account: bool as bool = false,
        /// do not let guests register their name with /register
        #[argh(switch)]
        no_register: bool as bool = false,
        /// how many recent chat lines a joining user is shown, 0 for none (default 20)
        #[argh(option, from_str_fn(whole))]
        history: Option<usize> as usize = 20,
        /// delete kept lines and direct messages older than this many days, at start and hourly; 0 keeps them all (default 365)
        #[argh(option, from_str_fn(whole))]
        history_days: Option<u32> as u32 = 365,
        /// keep rooms' lines and direct messages in memory only: no history after a restart, no offline messages (default: kept in DATA_DIR/history.sqlite)
        #[argh(switch)]
        no_history_store: bool as bool = false,
        /// bytes queued for a client that may last only --outbuf-soft-secs (default 262144)
        #[argh(option, from_str_fn(whole))]
        outbuf_soft: Option<usize> as usize = 256 * 1024,
        /// seconds a client may stay over --outbuf-soft before it is disconnected (default 10)
        #[argh(option, from_str_fn(whole))]
        outbuf_soft_secs: Option<u64> as u64 = 10,
        /// seconds a new connection may take to give its name and password (default 30)
        #[argh(option, from_str_fn(whole))]
        name_timeout: Option<u64> as u64 = 30,
        /// milliseconds a new connection that sends nothing is waited for before it is greeted as a text client; TLS and IRC clients speak first (default 200)
        #[argh(option, from_str_fn(whole))]
        greeting_delay: Option<u64> as u64 = 200,
        /// longest frame a framed client may send, in bytes (default 65536); a longer one closes it
        #[argh(option, from_str_fn(whole))]
        max_frame: Option<usize> as usize = 64 * 1024,
        /// most bytes of one unfinished over-long text line read and dropped before the connection is closed (default 1048576)
        #[argh(option, from_str_fn(whole))]
        max_line_discard: Option<usize> as usize = 1024 * 1024,
        /// seconds a framed or web client may be silent before it is sent a keepalive ping (default 60)
        #[argh(option, from_str_fn(whole))]
        ping_interval: Option<u64> as u64 = 60,
        /// keepalive pings a framed or web client may leave unanswered before it is closed (default 2)
        #[argh(option, from_str_fn(whole))]
        ping_misses: Option<u8> as u8 = 2,
        /// the room everyone is in, '#' then 1 to 32 letters, digits, '_', '-', '.' (default #lobby)
        #[argh(option)]
        default_room: Option<String> as String = String::from("#lobby"),
        /// do not let users make rooms with /join (admins still may)
        #[argh(switch)]
        no_create_rooms: bool as bool = false,
        /// most rooms on the server, the default room included (default 1000)
        #[argh(option, from_str_fn(whole))]
        max_rooms: Option<usize> as usize = 1000,
        /// most rooms one user may be in, the default room included (default 20)
        #[argh(option, from_str_fn(whole))]
        max_rooms_per_user: Option<usize> as usize = 20,
        /// serve TLS with this PEM certificate chain, the server's own certificate first (with --tls-key)
        #[argh(option)]
        tls_cert: Option<PathBuf> as Option<PathBuf> = None,
        /// the PEM private key of --tls-cert (other users must not be able to read it)
        #[argh(option)]
        tls_key: Option<PathBuf> as Option<PathBuf> = None,
        /// serve TLS with a certificate made on first start in DATA_DIR/tls and kept for later starts
        #[argh(switch)]
        tls_self_signed: bool as bool = false,
        /// with TLS on, refuse plain connections (with a line saying how to connect securely)
        #[argh(switch)]
        tls_required: bool as bool = false,
        /// with TLS on, take passwords over plain connections too
        #[argh(switch)]
        allow_plain_passwords: bool as bool = false,
        /// a host name the web page is served under (repeatable); when given, requests for any other Host are refused, against DNS rebinding
        #[argh(option)]
        web_host: Vec<String> as Vec<String> = Vec::new(),
        /// another site's origin whose pages may open the chat's WebSocket, e.g. https://portal.example.org (repeatable)
        #[argh(option)]
        web_origin: Vec<String> as Vec<String> = Vec::new(),
        /// serve Prometheus metrics at http://ADDR/metrics and a health check at /healthz, e.g. 127.0.0.1:3002 (default off; keep it on loopback or a private network)
        #[argh(option)]
        metrics_listen: Option<String> as Option<String> = None,
        /// also listen on this address for IRC clients only, e.g. 0.0.0.0:6667 (a host alone is port 6667; TLS as on --listen)
        #[argh(option)]
        listen_irc: Option<String> as Option<String> = None,
        /// the server's IRC name, in its welcome and the source of its lines (default: the host name)
        #[argh(option)]
        server_name: Option<String> as Option<String> = None,
        /// do not show IRC users the default room as joined when they connect
        #[argh(switch)]
        irc_no_autojoin: bool as bool = false,
        /// be one node of a cluster of chatd servers that share this Redis, e.g. redis://127.0.0.1:6379 (default: no cluster)
        #[argh(option)]
        cluster: Option<String> as Option<String> = None,
        /// this node's name in the cluster: letters, digits, '-', '_', '.' (default: the host name and the process id)
        #[argh(option)]
        node_name: Option<String> as Option<String> = None,
        /// let other chatd processes listen on the same --listen and --listen-irc ports (SO_REUSEPORT; the kernel spreads new connections over them), for the nodes of one cluster
        #[argh(switch)]
        reuse_port: bool as bool = false,
        /// run this many nodes of the cluster on this machine, behind the one --listen port: this process and N - 1 copies of it that it starts and stops (default 1; implies --reuse-port)
        #[argh(option, from_str_fn(whole))]
        nodes: Option<usize> as usize = 1,
    }
    other flags {
        /// set by --nodes for the nodes it starts: this node's number (1, 2, ...); it ends when the node that started it does
        #[argh(option)]
        node_index: Option<usize>,
        /// the cluster's name lease and heartbeat time in milliseconds (default 10000; for tests)
        #[argh(option, hidden_help, from_str_fn(whole))]
        cluster_lease_ms: Option<u64>,
        /// about how many entries the cluster's log keeps (default 100000; for tests)
        #[argh(option, hidden_help, from_str_fn(whole))]
        cluster_log_max: Option<u64>,
        /// most entries waiting for Redis before lines and logins are refused (default 10000; for tests)
        #[argh(option, hidden_help, from_str_fn(whole))]
        cluster_queue_max: Option<u64>,
        /// read the settings from this TOML file first (a key for each flag above, without its --); flags given override it
        #[argh(option)]
        config: Option<PathBuf>,
        /// print the version and exit
        #[argh(switch)]
        version: bool,
        #[argh(subcommand)]
        command: Option<Command>,
    }
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    CheckConfig(CheckConfigArgs),
    User(UserArgs),
    Room(RoomArgs),
    Tls(TlsArgs),
}

/// Check the settings (the --config file under the flags given) and print them as a settings
/// file; exit 1 with the file, line and key of the first problem.
#[derive(FromArgs)]
#[argh(subcommand, name = "check-config")]
struct CheckConfigArgs {
    /// the settings file to check; may be given before `check-config` instead
    #[argh(option)]
    config: Option<PathBuf>,
}

/// Show the server's TLS certificate.
#[derive(FromArgs)]
#[argh(subcommand, name = "tls")]
struct TlsArgs {
    /// directory of the self-signed certificate (default ./chatd-data); may be given before `tls` instead
    #[argh(option)]
    data_dir: Option<PathBuf>,
    #[argh(subcommand)]
    command: TlsSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum TlsSub {
    Fingerprint(FingerprintArgs),
}

/// Print the SHA-256 fingerprint of the certificate in use (the self-signed one in the data
/// directory, or --tls-cert FILE), to compare with what a client shows.
#[derive(FromArgs)]
#[argh(subcommand, name = "fingerprint")]
struct FingerprintArgs {
    /// the PEM certificate chain chatd is given, instead of the self-signed one; may be given before `tls` instead
    #[argh(option)]
    tls_cert: Option<PathBuf>,
    /// directory of the self-signed certificate (default ./chatd-data); may be given before `fingerprint` instead
    #[argh(option)]
    data_dir: Option<PathBuf>,
}

/// Manage accounts and roles in the data directory (safe while the server runs).
#[derive(FromArgs)]
#[argh(subcommand, name = "user")]
struct UserArgs {
    /// directory of the accounts and bans files (default ./chatd-data); may be given before `user` instead
    #[argh(option)]
    data_dir: Option<PathBuf>,
    /// manage the accounts of the cluster at this Redis (e.g. redis://127.0.0.1:6379) instead of the data directory's; may be given before `user`, or as `cluster` in the --config file
    #[argh(option)]
    cluster: Option<String>,
    #[argh(subcommand)]
    command: UserSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum UserSub {
    Add(AddArgs),
    Del(DelArgs),
    Passwd(PasswdArgs),
    Grant(GrantArgs),
    List(ListArgs),
    Import(ImportArgs),
}

/// Register a name; its password is one line of stdin, or typed twice at a terminal.
#[derive(FromArgs)]
#[argh(subcommand, name = "add")]
struct AddArgs {
    /// the name to register
    #[argh(positional)]
    name: String,
    /// give it the admin role (default user)
    #[argh(switch)]
    admin: bool,
}

/// Remove an account.
#[derive(FromArgs)]
#[argh(subcommand, name = "del")]
struct DelArgs {
    /// the registered name
    #[argh(positional)]
    name: String,
}

/// Set a new password: one line of stdin, or typed twice at a terminal.
#[derive(FromArgs)]
#[argh(subcommand, name = "passwd")]
struct PasswdArgs {
    /// the registered name
    #[argh(positional)]
    name: String,
}

/// Set the role of an account: admin or user.
#[derive(FromArgs)]
#[argh(subcommand, name = "grant")]
struct GrantArgs {
    /// the registered name
    #[argh(positional)]
    name: String,
    /// admin or user
    #[argh(positional, from_str_fn(parse_role))]
    role: Role,
}

/// Print every account as NAME ROLE.
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct ListArgs {}

/// Copy the data directory's accounts and bans into the cluster (--cluster): the move from one
/// server's files to a cluster.
#[derive(FromArgs)]
#[argh(subcommand, name = "import")]
struct ImportArgs {
    /// overwrite the accounts and bans the cluster has already
    #[argh(switch)]
    replace: bool,
}

/// Manage the persistent rooms in the data directory (safe while the server runs; a running
/// server picks the changes up at its next start).
#[derive(FromArgs)]
#[argh(subcommand, name = "room")]
struct RoomArgs {
    /// directory of the rooms file (default ./chatd-data); may be given before `room` instead
    #[argh(option)]
    data_dir: Option<PathBuf>,
    #[argh(subcommand)]
    command: RoomSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum RoomSub {
    Add(RoomAddArgs),
    Del(RoomDelArgs),
    List(RoomListArgs),
}

/// Make a persistent room: it stays when empty and across restarts.
#[derive(FromArgs)]
#[argh(subcommand, name = "add")]
struct RoomAddArgs {
    /// the room, '#' then 1 to 32 letters, digits, '_', '-', '.' (quote it: a shell takes # for a comment)
    #[argh(positional)]
    name: String,
    /// its topic, one line (set by Host)
    #[argh(option)]
    topic: Option<String>,
}

/// Remove a persistent room.
#[derive(FromArgs)]
#[argh(subcommand, name = "del")]
struct RoomDelArgs {
    /// the room
    #[argh(positional)]
    name: String,
}

/// Print every persistent room, with its topic, who set it and when.
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
struct RoomListArgs {}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "the role must be admin or user".to_owned())
}

/// The default of `--cluster-lease-ms`.
const DEFAULT_LEASE_MS: u64 = 10_000;

/// The levels `--log-level` takes, quietest first.
const LOG_LEVELS: &str = "off, error, warn, info, debug or trace";

/// A `--log-level`: a word as a flag, a string in the settings file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LogLevel(LevelFilter);

impl std::str::FromStr for LogLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<LogLevel, String> {
        text.parse()
            .map(LogLevel)
            .map_err(|_| format!("the level must be {LOG_LEVELS}"))
    }
}

impl Serialize for LogLevel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.as_str().to_ascii_lowercase())
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<LogLevel, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A whole number flag; its range is checked with the others by [`Config::validate`].
fn whole<T: std::str::FromStr + Bounded>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            format!("too large: at most {}", T::max_text())
        } else {
            "expected a whole number (digits only)".to_owned()
        }
    })
}

/// A decimal number flag, e.g. `2.5`.
fn decimal(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| "expected a number, e.g. 5 or 0.5".to_owned())
}

/// The largest value of a number type, as shown in an error.
trait Bounded {
    fn max_text() -> String;
}

impl Bounded for u8 {
    fn max_text() -> String {
        u8::MAX.to_string()
    }
}

impl Bounded for u32 {
    fn max_text() -> String {
        u32::MAX.to_string()
    }
}

impl Bounded for u64 {
    fn max_text() -> String {
        u64::MAX.to_string()
    }
}

impl Bounded for usize {
    fn max_text() -> String {
        usize::MAX.to_string()
    }
}

fn main() -> ExitCode {
    // Before any thread exists: the local offset cannot be read safely afterwards.
    let utc_offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let args: Args = argh::from_env();
    if args.version {
        println!("chatd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let result = match args.command {
        Some(Command::CheckConfig(ref check)) => check_config(&args, check, utc_offset),
        Some(Command::User(ref user)) => run_user(&args, user),
        Some(Command::Room(ref room)) => run_room(&args, room),
        Some(Command::Tls(ref tls)) => run_tls(&args, tls),
        None => run(&args, utc_offset),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chatd: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The settings in effect: the flags given over the `--config` file over the defaults.
struct Effective {
    settings: Settings,
    file: Option<SettingsFile>,
    /// The keys given as flags on the command line.
    given: toml::Table,
}

impl Effective {
    /// Reads the settings file (`--config`, given before the subcommand or as `after` it) and
    /// lays the flags given over it.
    fn of(args: &Args, after: &Option<PathBuf>, subcommand: &str) -> Result<Effective, String> {
        let path = given_once("--config", &args.config, after, subcommand)?;
        let file = path
            .map(|path| SettingsFile::read(&path))
            .transpose()
            .map_err(|e| e.to_string())?;
        let base = match &file {
            Some(file) => file.settings().map_err(|e| e.to_string())?,
            None => Settings::default(),
        };
        let given = settings::given(args).map_err(|e| e.to_string())?;
        let settings = settings::overlay(&base, &given).map_err(|e| e.to_string())?;
        Ok(Effective {
            settings,
            file,
            given,
        })
    }

    /// The server's configuration, or the first setting that cannot work: at its line in the
    /// settings file when its value came from there, else named by its flag.
    fn server_config(
        &self,
        utc_offset: time::UtcOffset,
        lease_ms: Option<u64>,
    ) -> Result<ServerSettings, String> {
        server_config(&self.settings, utc_offset, lease_ms).map_err(|e| self.blame(e))
    }

    /// `error` said at the line of its key when the file gave the value, else by its flag.
    fn blame(&self, error: ConfigError) -> String {
        let key = error.flag.trim_start_matches("--");
        match &self.file {
            Some(file) if !self.given.contains_key(key) && file.line_of(key).is_some() => file
                .error_at(
                    key,
                    format!("invalid value '{}': {}", error.value, error.allowed),
                )
                .to_string(),
            _ => error.to_string(),
        }
    }

    /// The settings as a settings file: every key with its value, unset ones as comments.
    fn to_toml(&self) -> Result<String, String> {
        let table = toml::Table::try_from(&self.settings)
            .map_err(|e| format!("cannot print the settings: {e}"))?;
        let mut text = String::new();
        for name in Settings::KEYS {
            let key = name.replace('_', "-");
            match table.get(&key) {
                Some(value) => text.push_str(&format!("{key} = {value}\n")),
                None => text.push_str(&format!("# {key} is not set\n")),
            }
        }
        Ok(text)
    }
}

/// What the settings make: the server's configuration and the addresses `listen` and
/// `metrics-listen` and `listen-irc` name.
struct ServerSettings {
    config: Config,
    listen: Vec<SocketAddr>,
    metrics: Option<Vec<SocketAddr>>,
    listen_irc: Option<Vec<SocketAddr>>,
}

/// The most nodes `--nodes` starts on one machine.
const MAX_NODES: usize = 64;

/// The server's configuration from the effective settings, checked, or the first setting that
/// cannot work, named by its flag.
fn server_config(
    s: &Settings,
    utc_offset: time::UtcOffset,
    lease_ms: Option<u64>,
) -> Result<ServerSettings, ConfigError> {
    if !(1..=MAX_NODES).contains(&s.nodes) {
        return Err(ConfigError::new(
            "--nodes",
            s.nodes.to_string(),
            format!("1 to {MAX_NODES}"),
        ));
    }
    if s.nodes > 1 && s.cluster.is_none() {
        return Err(ConfigError::new(
            "--nodes",
            s.nodes.to_string(),
            "needs --cluster: without one each process would be a chat of its own",
        ));
    }
    let listen = config::listen_addrs(&s.listen)?;
    let metrics = s
        .metrics_listen
        .as_deref()
        .map(config::metrics_addrs)
        .transpose()?;
    let listen_irc = s
        .listen_irc
        .as_deref()
        .map(config::listen_irc_addrs)
        .transpose()?;
    let tls = TlsFlags {
        cert: s.tls_cert.clone(),
        key: s.tls_key.clone(),
        self_signed: s.tls_self_signed,
        required: s.tls_required,
        allow_plain_passwords: s.allow_plain_passwords,
    }
    .settings()?;
    let mut config = Config {
        listen: listen[0],
        console: !s.no_console,
        max_clients: s.max_clients,
        max_outbuf: s.max_outbuf,
        outbuf_soft: s.outbuf_soft,
        outbuf_soft_time: Duration::from_secs(s.outbuf_soft_secs),
        max_per_ip: s.max_per_ip,
        name_timeout: Duration::from_secs(s.name_timeout),
        greeting_delay: Duration::from_millis(s.greeting_delay),
        ping_interval: Duration::from_secs(s.ping_interval),
        ping_misses: s.ping_misses,
        limit_loopback: s.limit_loopback,
        flood: (!s.no_flood_control).then_some(FloodPolicy {
            burst: s.flood_burst,
            per_second: s.flood_rate,
        }),
        utc_offset,
        data_dir: s.data_dir.clone(),
        require_account: s.require_account,
        allow_register: !s.no_register,
        history: s.history,
        history_store: !s.no_history_store,
        history_days: s.history_days,
        tls,
        web_hosts: s.web_host.clone(),
        web_origins: s.web_origin.clone(),
        listen_irc: listen_irc.as_ref().map(|addrs| addrs[0]),
        server_name: s.server_name.clone().unwrap_or_else(config::host_name),
        irc_autojoin: !s.irc_no_autojoin,
        cluster: match &s.cluster {
            Some(url) => Some(ClusterConfig::parse(
                url,
                s.node_name.as_deref(),
                lease_ms.unwrap_or(DEFAULT_LEASE_MS),
            )?),
            None => None,
        },
        ..Config::default()
    };
    config.limits.max_frame = s.max_frame;
    config.limits.max_discard = s.max_line_discard;
    config.rooms.default_room = s.default_room.clone();
    config.rooms.create_rooms = !s.no_create_rooms;
    config.rooms.max_rooms = s.max_rooms;
    config.rooms.max_rooms_per_user = s.max_rooms_per_user;
    config.validate()?;
    Ok(ServerSettings {
        config,
        listen,
        metrics,
        listen_irc,
    })
}

/// `chatd check-config`: the settings checked as a start would check them, and printed.
fn check_config(
    args: &Args,
    check: &CheckConfigArgs,
    utc_offset: time::UtcOffset,
) -> Result<(), String> {
    let effective = Effective::of(args, &check.config, "check-config")?;
    effective.server_config(utc_offset, args.cluster_lease_ms)?;
    let source = match &effective.file {
        Some(file) => format!("{} and the flags given", file.path().display()),
        None => "the defaults and the flags given (no --config file)".to_owned(),
    };
    print!(
        "# chatd {}: settings from {source}\n{}",
        env!("CARGO_PKG_VERSION"),
        effective.to_toml()?
    );
    Ok(())
}

fn run(args: &Args, utc_offset: time::UtcOffset) -> Result<(), String> {
    let effective = Effective::of(args, &None, "")?;
    let ServerSettings {
        mut config,
        listen,
        metrics,
        listen_irc,
    } = effective.server_config(utc_offset, args.cluster_lease_ms)?;
    let settings = &effective.settings;
    init_logging(&settings.log_file, settings.log_level.0, utc_offset)?;
    // Before binding: a certificate that cannot be served stops the start, naming the file.
    let cert = config
        .tls
        .as_ref()
        .map(|tls| tls::server::load(&tls.cert, &config.data_dir))
        .transpose()
        .map_err(|e| e.to_string())?;
    // A corrupt or unreadable store stops start-up, naming the file and line; it is never replaced.
    let store = Store::open(&config.data_dir).map_err(|e| data_dir_error(&config.data_dir, e))?;
    // A cluster's accounts and bans are in its Redis (`chatd user import` moves them there).
    let registry = match &config.cluster {
        Some(cluster) => {
            ClusterRegistry::connect(&cluster.url, &cluster.node)
                .and_then(|mut accounts| accounts.load())
                .map_err(|e| format!("--cluster {}: {e}", cluster.url))?
                .registry
        }
        None => store.load().map_err(|e| e.to_string())?,
    };
    let rooms = RoomStore::on(store.data_dir().clone());
    let rooms = rooms.load().map_err(|e| e.to_string())?;
    config.rooms.persistent = roomfile::to_core(&rooms, utc_offset);
    // A node started by --nodes shares the ports, ends with its parent and starts no nodes.
    let started_by_nodes = args.node_index.is_some();
    if let Some(index) = args.node_index {
        nodes::end_with_parent().map_err(|e| format!("cannot follow the first node: {e}"))?;
        config.history_file = nodes::history_file(index);
        // Each node of a cluster has a name of its own: a --node-name given is shared by the
        // copies, which add their number to it (the default, host name and pid, differs anyway).
        if let (Some(cluster), Some(_)) = (config.cluster.as_mut(), &effective.settings.node_name) {
            cluster.node = format!("{}-{index}", cluster.node);
        }
    }
    if let (Some(cluster), Some(max)) = (config.cluster.as_mut(), args.cluster_log_max) {
        cluster.log_max = max.max(1);
    }
    if let (Some(cluster), Some(max)) = (config.cluster.as_mut(), args.cluster_queue_max) {
        cluster.queue_max = usize::try_from(max).unwrap_or(usize::MAX).max(1);
    }
    let starts_nodes = settings.nodes > 1 && !started_by_nodes;
    let shared = settings.reuse_port || starts_nodes || started_by_nodes;
    let listener = bind("--listen", &settings.listen, &listen, shared)?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    config.listen = local;
    let metrics = match (&settings.metrics_listen, &metrics) {
        (Some(text), Some(addrs)) => Some(bind_metrics(text, addrs)?),
        _ => None,
    };
    config.metrics_listen = metrics.as_ref().map(|(_, addr)| *addr);
    println!("chatd listening on {local}");
    log::info!("listening on {local}");
    if let Some((_, addr)) = &metrics {
        println!("chatd metrics on http://{addr}/metrics");
        log::info!("metrics on http://{addr}/metrics");
    }
    if let Some(cert) = &cert {
        println!("chatd {}", cert.announcement());
        log::info!("{}", cert.announcement());
    }
    let irc_listener = match (&settings.listen_irc, &listen_irc) {
        (Some(text), Some(addrs)) => {
            let irc = bind("--listen-irc", text, addrs, shared)?;
            let local = irc
                .local_addr()
                .map_err(|e| format!("cannot read the IRC listening address: {e}"))?;
            config.listen_irc = Some(local);
            println!("chatd listening for IRC on {local}");
            log::info!("listening for IRC on {local}");
            Some(irc)
        }
        _ => None,
    };
    let tls = cert.map(|cert| cert.config);
    let (config_irc, config_metrics) = (config.listen_irc, config.metrics_listen);
    let mut server =
        Server::new(listener, config, store, registry, tls).map_err(|e| e.to_string())?;
    if let Some((listener, _)) = metrics {
        server.serve_metrics(listener).map_err(|e| e.to_string())?;
    }
    if let Some(irc) = irc_listener {
        server.listen_irc(irc).map_err(|e| e.to_string())?;
    }
    let nodes = if starts_nodes {
        let at = nodes::Addresses {
            listen: local,
            irc: config_irc,
            metrics: config_metrics,
        };
        let started = nodes::Nodes::start(settings.nodes, at)
            .map_err(|e| format!("--nodes {}: cannot start a node: {e}", settings.nodes))?;
        Some(started)
    } else {
        None
    };
    notify::ready(&format!("listening on {local}"));
    let result = server.run().map_err(|e| e.to_string());
    if let Some(nodes) = nodes {
        nodes.stop();
    }
    result?;
    log::info!("stopped");
    Ok(())
}

/// Binds the `--metrics-listen` address, warning when it is not a loopback one; returns the
/// listener and where it listens.
fn bind_metrics(text: &str, addrs: &[SocketAddr]) -> Result<(TcpListener, SocketAddr), String> {
    let listener = bind("--metrics-listen", text, addrs, false)?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the metrics address: {e}"))?;
    if !addr.ip().is_loopback() {
        log::warn!(
            "--metrics-listen {addr} is not a loopback address: whoever can reach it reads the \
             server's counts (no names, no text); 127.0.0.1 keeps them to this machine"
        );
    }
    Ok((listener, addr))
}

/// Binds the first of `addrs` (what `flag text` named) that can be bound; `shared` lets other
/// processes bind it too ([`nodes::bind_shared`]).
fn bind(flag: &str, text: &str, addrs: &[SocketAddr], shared: bool) -> Result<TcpListener, String> {
    let mut failures = Vec::new();
    for &addr in addrs {
        let bound = if shared {
            nodes::bind_shared(addr)
        } else {
            TcpListener::bind(addr)
        };
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => failures.push(format!("{addr}: {e}")),
        }
    }
    Err(format!(
        "{flag} {text}: cannot listen on {}",
        failures.join("; ")
    ))
}

/// A data directory that cannot be opened, named with its flag.
fn data_dir_error(dir: &Path, error: StoreError) -> String {
    format!(
        "invalid value '{}' for --data-dir: {error} (it must be a directory, or a path where one can be made)",
        dir.display()
    )
}

/// The data directory of `chatd SUBCOMMAND ...`: `--data-dir` from either side of it, once, or
/// else the `--config` file's `data-dir`.
fn offline_data_dir(
    args: &Args,
    after: &Option<PathBuf>,
    subcommand: &str,
) -> Result<PathBuf, String> {
    match given_once("--data-dir", &args.data_dir, after, subcommand)? {
        Some(dir) => Ok(dir),
        None => Ok(Effective::of(args, &None, subcommand)?.settings.data_dir),
    }
}

/// A path flag of `chatd SUBCOMMAND ...` that may be given on either side of it, once.
fn given_once(
    flag: &str,
    before: &Option<PathBuf>,
    after: &Option<PathBuf>,
    subcommand: &str,
) -> Result<Option<PathBuf>, String> {
    match (before, after) {
        (Some(before), Some(after)) => Err(format!(
            "invalid value '{}' for {flag}: given twice (also '{}'); give it once, before or after `{subcommand}`",
            after.display(),
            before.display()
        )),
        (Some(path), None) | (None, Some(path)) => Ok(Some(path.clone())),
        (None, None) => Ok(None),
    }
}

/// `chatd tls fingerprint`: the fingerprint of the certificate in use, nothing made.
fn run_tls(args: &Args, tls: &TlsArgs) -> Result<(), String> {
    let TlsSub::Fingerprint(f) = &tls.command;
    let after_tls = given_once("--data-dir", &tls.data_dir, &f.data_dir, "fingerprint")?;
    let data_dir = offline_data_dir(args, &after_tls, "tls")?;
    match &tls.command {
        TlsSub::Fingerprint(f) => {
            let cert = given_once("--tls-cert", &args.tls_cert, &f.tls_cert, "tls")?;
            let fingerprint = tls::server::fingerprint_in_use(cert.as_deref(), &data_dir)
                .map_err(|e| e.to_string())?;
            println!("{fingerprint}");
            Ok(())
        }
    }
}

/// `chatd user ...`: no server, no logging; the data directory from either side of `user`.
fn run_user(args: &Args, user: &UserArgs) -> Result<(), String> {
    let data_dir = offline_data_dir(args, &user.data_dir, "user")?;
    let cluster = match (&args.cluster, &user.cluster) {
        (Some(_), Some(_)) => {
            return Err("--cluster: given twice; give it once, before or after `user`".into())
        }
        (Some(url), None) | (None, Some(url)) => Some(url.clone()),
        (None, None) => Effective::of(args, &None, "user")?.settings.cluster,
    };
    let command = match &user.command {
        UserSub::Add(a) => UserCommand::Add {
            name: a.name.clone(),
            admin: a.admin,
        },
        UserSub::Del(a) => UserCommand::Del {
            name: a.name.clone(),
        },
        UserSub::Passwd(a) => UserCommand::Passwd {
            name: a.name.clone(),
        },
        UserSub::Grant(a) => UserCommand::Grant {
            name: a.name.clone(),
            role: a.role,
        },
        UserSub::List(_) => UserCommand::List,
        UserSub::Import(import) => {
            let Some(url) = cluster else {
                return Err(
                    "user import: copies the accounts into a cluster: give --cluster URL".into(),
                );
            };
            return import_accounts(&data_dir, &url, import.replace);
        }
    };
    if let Some(url) = cluster {
        let mut book = cluster_registry(&url)?;
        return usercmd::run_on(
            &mut book,
            &command,
            usercmd::read_password,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )
        .map_err(|e| e.to_string());
    }
    usercmd::run(
        &data_dir,
        &command,
        usercmd::read_password,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
    .map_err(|e| match e {
        UserError::Store(e) if e.path == data_dir => data_dir_error(&data_dir, e),
        e => e.to_string(),
    })
}

/// The accounts of the cluster at `url` (checked as `--cluster` is), for `chatd user`.
fn cluster_registry(url: &str) -> Result<ClusterRegistry, String> {
    chatd::cluster::settings::check_url(url).map_err(|e| e.to_string())?;
    let writer = format!("chatd-user-{}", std::process::id());
    ClusterRegistry::connect(url, &writer).map_err(|e| e.to_string())
}

/// `chatd user import`: the data directory's accounts and bans, copied into the cluster.
fn import_accounts(data_dir: &Path, url: &str, replace: bool) -> Result<(), String> {
    let store = Store::open_existing(data_dir)
        .map_err(|e| data_dir_error(data_dir, e))?
        .ok_or_else(|| format!("user import: no data directory at {}", data_dir.display()))?;
    let registry = store.load().map_err(|e| e.to_string())?;
    cluster_registry(url)?
        .import(&registry, replace)
        .map_err(|e| e.to_string())?;
    println!(
        "imported {} accounts and {} bans from {} into the cluster at {url}",
        registry.accounts().count(),
        registry.bans().count(),
        data_dir.display()
    );
    Ok(())
}

/// `chatd room ...`: no server, no logging; the data directory from either side of `room`.
fn run_room(args: &Args, room: &RoomArgs) -> Result<(), String> {
    let data_dir = offline_data_dir(args, &room.data_dir, "room")?;
    let command = match &room.command {
        RoomSub::Add(a) => RoomsCommand::Add {
            name: a.name.clone(),
            topic: a.topic.clone(),
        },
        RoomSub::Del(a) => RoomsCommand::Del {
            name: a.name.clone(),
        },
        RoomSub::List(_) => RoomsCommand::List,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    roomcmd::run(
        &data_dir,
        &command,
        now,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
    .map_err(|e| match e {
        RoomsError::Store(e) if e.path == data_dir => data_dir_error(&data_dir, e),
        e => e.to_string(),
    })
}

/// The time stamp of every log line: RFC 3339 to the millisecond, with the local offset.
const LOG_TIME: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
);

/// Warnings and errors to stderr; everything at `level` to `log_file` if given, a file made
/// mode 0600 (at debug it holds chat text), appended to, and opened again on SIGHUP. When stderr
/// is the journal (systemd started chatd), stderr takes everything at `level` (and warnings)
/// instead, with the journal's priority prefix and without a time stamp of ours.
fn init_logging(
    log_file: &Option<String>,
    level: LevelFilter,
    utc_offset: time::UtcOffset,
) -> Result<(), String> {
    let mut builder = simplelog::ConfigBuilder::new();
    builder
        .set_time_offset(utc_offset)
        .set_time_format_custom(LOG_TIME)
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off);
    let log_config = builder.build();
    let mut loggers: Vec<Box<dyn SharedLogger>> = if service::log::stderr_is_journal() {
        // Warnings and errors reach the journal whatever the level, as they reach stderr otherwise.
        vec![JournalLogger::new(level.max(LevelFilter::Warn))]
    } else {
        vec![WriteLogger::new(
            LevelFilter::Warn,
            log_config.clone(),
            std::io::stderr(),
        )]
    };
    if let Some(path) = log_file {
        let file = LogFile::open(Path::new(path)).map_err(|e| {
            format!("invalid value '{path}' for --log-file: cannot open it: {e} (it must be a file that can be made or appended to)")
        })?;
        loggers.push(WriteLogger::new(level, log_config, file));
    }
    CombinedLogger::init(loggers).map_err(|e| format!("cannot start logging: {e}"))
}
