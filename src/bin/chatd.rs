//! `chatd`: parse the flags, set up logging, bind, and hand over to the library.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;
use simplelog::{CombinedLogger, LevelFilter, SharedLogger, WriteLogger};

use chatd::accounts::model::Role;
use chatd::accounts::store::Store;
use chatd::accounts::usercmd::{self, UserCommand};
use chatd::server::FloodPolicy;
use chatd::{Config, Server};

/// A chat server for a team, a class or a LAN: talk to it with `nc HOST 3001` or the `chat` client.
#[derive(FromArgs)]
struct Args {
    /// address to listen on (default 0.0.0.0:3001)
    #[argh(option, default = "SocketAddr::from(([0, 0, 0, 0], 3001))")]
    listen: SocketAddr,
    /// write a log of connections, names, kicks, drops and errors to this file
    #[argh(option)]
    log_file: Option<String>,
    /// log level for --log-file: error, warn, info, debug or trace (default info; debug logs chat text)
    #[argh(option, default = "LevelFilter::Info")]
    log_level: LevelFilter,
    /// do not read host commands from stdin
    #[argh(switch)]
    no_console: bool,
    /// most connections at once, named or not (default 1024)
    #[argh(option, default = "1024")]
    max_clients: usize,
    /// most connections from one address (default 16; loopback is exempt unless --limit-loopback)
    #[argh(option, default = "16")]
    max_per_ip: usize,
    /// messages a client may send at once before flood control slows it (default 10)
    #[argh(option, default = "10.0")]
    flood_burst: f64,
    /// messages per second a client may send after its burst (default 5)
    #[argh(option, default = "5.0")]
    flood_rate: f64,
    /// turn flood control off (for load tests)
    #[argh(switch)]
    no_flood_control: bool,
    /// apply --max-per-ip to loopback addresses too
    #[argh(switch)]
    limit_loopback: bool,
    /// most bytes queued for a client that does not read before it is disconnected (default 1048576)
    #[argh(option, default = "1024 * 1024")]
    max_outbuf: usize,
    /// directory of the accounts and bans files, created on first use (default ./chatd-data)
    #[argh(option)]
    data_dir: Option<PathBuf>,
    /// let only registered names join
    #[argh(switch)]
    require_account: bool,
    /// do not let guests register their name with /register
    #[argh(switch)]
    no_register: bool,
    /// how many recent chat lines a joining user is shown, 0 for none (default 20)
    #[argh(option, default = "20")]
    history: usize,
    /// bytes queued for a client that may last only --outbuf-soft-secs (default 262144)
    #[argh(option, default = "256 * 1024")]
    outbuf_soft: usize,
    /// seconds a client may stay over --outbuf-soft before it is disconnected (default 10)
    #[argh(option, default = "10")]
    outbuf_soft_secs: u64,
    /// seconds a new connection may take to give its name and password (default 30)
    #[argh(option, default = "30")]
    name_timeout: u64,
    /// longest frame a framed client may send, in bytes (default 65536); a longer one closes it
    #[argh(option, default = "64 * 1024")]
    max_frame: usize,
    /// most bytes of one unfinished over-long text line read and dropped before the connection is closed (default 1048576)
    #[argh(option, default = "1024 * 1024")]
    max_line_discard: usize,
    /// seconds a framed client may be silent before it is sent a keepalive ping (default 60)
    #[argh(option, default = "60")]
    ping_interval: u64,
    /// keepalive pings a framed client may leave unanswered before it is closed (default 2)
    #[argh(option, default = "2")]
    ping_misses: u8,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    User(UserArgs),
}

/// Manage accounts and roles in the data directory (safe while the server runs).
#[derive(FromArgs)]
#[argh(subcommand, name = "user")]
struct UserArgs {
    /// directory of the accounts and bans files (default ./chatd-data); may be given before `user` instead
    #[argh(option)]
    data_dir: Option<PathBuf>,
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

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "the role must be admin or user".to_owned())
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
        Some(Command::User(ref user)) => run_user(&args, user),
        None => run(args, utc_offset),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chatd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args, utc_offset: time::UtcOffset) -> Result<(), String> {
    init_logging(&args, utc_offset)?;
    let mut config = Config {
        listen: args.listen,
        console: !args.no_console,
        max_clients: args.max_clients,
        max_outbuf: args.max_outbuf,
        outbuf_soft: args.outbuf_soft,
        outbuf_soft_time: std::time::Duration::from_secs(args.outbuf_soft_secs),
        max_per_ip: args.max_per_ip,
        name_timeout: std::time::Duration::from_secs(args.name_timeout),
        ping_interval: std::time::Duration::from_secs(args.ping_interval.max(1)),
        ping_misses: args.ping_misses,
        limit_loopback: args.limit_loopback,
        flood: (!args.no_flood_control).then_some(FloodPolicy {
            burst: args.flood_burst,
            per_second: args.flood_rate,
        }),
        utc_offset,
        data_dir: args.data_dir.unwrap_or_else(|| Config::default().data_dir),
        require_account: args.require_account,
        allow_register: !args.no_register,
        history: args.history,
        ..Config::default()
    };
    config.limits.max_frame = args.max_frame;
    config.limits.max_discard = args.max_line_discard;
    config.validate().map_err(|e| e.to_string())?;
    // A corrupt or unreadable store stops start-up, naming the file and line; it is never replaced.
    let store = Store::open(&config.data_dir).map_err(|e| e.to_string())?;
    let registry = store.load().map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!("chatd listening on {local}");
    log::info!("listening on {local}");
    let server = Server::new(listener, config, store, registry).map_err(|e| e.to_string())?;
    server.run().map_err(|e| e.to_string())?;
    log::info!("stopped");
    Ok(())
}

/// `chatd user ...`: no server, no logging; the data directory from either side of `user`.
fn run_user(args: &Args, user: &UserArgs) -> Result<(), String> {
    let data_dir = match (&args.data_dir, &user.data_dir) {
        (Some(_), Some(_)) => return Err("--data-dir: give it once, before or after `user`".into()),
        (Some(dir), None) | (None, Some(dir)) => dir.clone(),
        (None, None) => Config::default().data_dir,
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
    };
    usercmd::run(
        &data_dir,
        &command,
        usercmd::read_password,
        &mut std::io::stdout().lock(),
    )
    .map_err(|e| e.to_string())
}

fn init_logging(args: &Args, utc_offset: time::UtcOffset) -> Result<(), String> {
    let mut builder = simplelog::ConfigBuilder::new();
    builder.set_time_offset(utc_offset);
    let log_config = builder.build();
    let mut loggers: Vec<Box<dyn SharedLogger>> = vec![WriteLogger::new(
        LevelFilter::Warn,
        log_config.clone(),
        std::io::stderr(),
    )];
    if let Some(path) = &args.log_file {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("--log-file: cannot open {path}: {e}"))?;
        loggers.push(WriteLogger::new(args.log_level, log_config, file));
    }
    CombinedLogger::init(loggers).map_err(|e| format!("cannot start logging: {e}"))
}
