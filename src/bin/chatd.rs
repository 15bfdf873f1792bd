//! `chatd`: parse the flags, set up logging, bind, and hand over to the library.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use argh::FromArgs;
use simplelog::{CombinedLogger, LevelFilter, SharedLogger, WriteLogger};

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
    /// most bytes queued for a client that does not read before it is disconnected (default 1048576)
    #[argh(option, default = "1024 * 1024")]
    max_outbuf: usize,
    /// longest frame a framed client may send, in bytes (default 65536); a longer one closes it
    #[argh(option, default = "64 * 1024")]
    max_frame: usize,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

fn main() -> ExitCode {
    // Before any thread exists: the local offset cannot be read safely afterwards.
    let utc_offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let args: Args = argh::from_env();
    if args.version {
        println!("chatd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match run(args, utc_offset) {
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
        utc_offset,
        ..Config::default()
    };
    config.limits.max_frame = args.max_frame;
    config.validate().map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!("chatd listening on {local}");
    log::info!("listening on {local}");
    let server = Server::new(listener, config).map_err(|e| e.to_string())?;
    server.run().map_err(|e| e.to_string())?;
    log::info!("stopped");
    Ok(())
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
