//! `chatd-load`: parse the flags into validated settings, run, print the figures.
//!
//! Exits 0 when every client joined, stayed, and got every message exactly once; 1 when the run
//! finished but did not; 2 when it could not run.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;

use chatd::load::tls::{TlsClient, Trust};
use chatd::load::{
    self, resolve_target, Scenario, Settings, SettingsError, Template, TextWire, Wire, WireMode,
    WsWire,
};
use chatd::tls::Fingerprint;

/// Load a chat server: clients join, then burst, send at a steady rate, or stay idle. Reports
/// deliveries per second, lost and duplicated deliveries, latency, and with --server-pid the
/// server's CPU time per 1,000 deliveries and its memory.
#[derive(FromArgs)]
struct Args {
    /// burst (every client sends --messages as fast as it can), rate (--rate msg/s for --duration
    /// seconds), idle (hold --clients connections for --hold seconds) or connect (--clients new
    /// connections, --connect-batch at once, each closed once the server's first line came)
    #[argh(positional)]
    scenario: Option<Scenario>,
    /// the server's HOST:PORT (default 127.0.0.1:3001); loopback only unless --allow-remote;
    /// repeat it for the nodes of one cluster: the clients are spread over them, round robin by
    /// room, and latency is also reported for lines that cross from one to another
    #[argh(option)]
    addr: Vec<String>,
    /// allow an --addr that is not loopback
    #[argh(switch)]
    allow_remote: bool,
    /// connections (default 50 for burst, 100 for rate, 1000 for idle, 2000 for connect)
    #[argh(option)]
    clients: Option<usize>,
    /// burst: messages each client sends (default 2000)
    #[argh(option, default = "2000")]
    messages: u64,
    /// payload bytes per message, line end not counted (default 64)
    #[argh(option, default = "64")]
    size: usize,
    /// rate: messages per second over all clients together (default 500)
    #[argh(option, default = "500")]
    rate: u64,
    /// rate: seconds to send for (default 10)
    #[argh(option, default = "10.0")]
    duration: f64,
    /// idle: seconds to hold the connections once all have joined (default 2)
    #[argh(option, default = "2.0")]
    hold: f64,
    /// text (default), framed (chatd's frames, as the chat client speaks) or ws (chatd's
    /// WebSocket mode: the upgrade, then JSON messages); the templates and --welcome are for
    /// text mode only
    #[argh(option, default = "WireMode::Text")]
    mode: WireMode,
    /// what a client sends to join, with {name} filled in and \n \r \t \\ escapes (default
    /// "{name}\n")
    #[argh(option, default = "String::from(r\"{name}\\n\")")]
    name_template: String,
    /// what a client sends to say a payload, with {payload} filled in (default "{payload}\n")
    #[argh(option, default = "String::from(r\"{payload}\\n\")")]
    say_template: String,
    /// a line containing this is the server's welcome; "" to count a client joined once its join
    /// bytes are written (default `[*] Welcome`)
    #[argh(option, default = "String::from(\"[*] Welcome\")")]
    welcome: String,
    /// clients are named PREFIX0, PREFIX1, ... (default "load")
    #[argh(option, default = "String::from(\"load\")")]
    name_prefix: String,
    /// spread the clients over N rooms: client i joins room ROOM-PREFIX(i % N) after its welcome
    /// and hears only its room's others (default 0: no rooms; text and ws modes only)
    #[argh(option, default = "0")]
    rooms: usize,
    /// rooms are named PREFIX0, PREFIX1, ... (default "#load")
    #[argh(option, default = "String::from(\"#load\")")]
    room_prefix: String,
    /// what a client sends to join its room, with {room} filled in (default "/join {room}\n")
    #[argh(option, default = "String::from(r\"/join {room}\\n\")")]
    room_template: String,
    /// a line containing this, with {room} filled in, confirms the room join; repeat for more
    /// than one form, "" to count a client in its room once its join bytes are written (default
    /// chatd's "You joined {room} (" and "You made {room} and")
    #[argh(option)]
    room_joined: Vec<String>,
    /// every client connects with TLS (a full handshake each, no resumption); the server's
    /// certificate is not verified unless --tls-fingerprint is given: load testing only
    #[argh(switch)]
    tls: bool,
    /// with --tls: accept only the server certificate with this SHA-256 fingerprint (as `chatd
    /// tls fingerprint` prints it)
    #[argh(option)]
    tls_fingerprint: Option<Fingerprint>,
    /// connect: what each connection sends once connected, with \n \r \t \\ escapes (default
    /// nothing: chatd greets after its short silence; one letter of a name makes it greet at once)
    #[argh(option, default = "String::new()")]
    connect_send: String,
    /// the server's process id: report its CPU time per 1,000 deliveries and its memory; repeat
    /// it for every node of a cluster (their figures are added up, and shown per node)
    #[argh(option)]
    server_pid: Vec<u32>,
    /// stop after this many seconds, whatever the stage (default 60)
    #[argh(option, default = "60.0")]
    timeout: f64,
    /// most connections connecting or joining at once (default 100)
    #[argh(option, default = "100")]
    connect_batch: usize,
    /// what to call the server in the report (default "chatd")
    #[argh(option, default = "String::from(\"chatd\")")]
    label: String,
    /// print the figures as JSON on stdout; the summary goes to stderr
    #[argh(switch)]
    json: bool,
    /// print no progress line
    #[argh(switch)]
    quiet: bool,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        println!("chatd-load {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let settings = match settings(&args) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("chatd-load: {e}");
            return ExitCode::from(2);
        }
    };
    raise_file_limit(settings.clients);
    let mut progress = ProgressLine::new(args.quiet);
    let report = match load::run(&settings, &mut |p| progress.show(&p.to_string())) {
        Ok(report) => report,
        Err(e) => {
            progress.end();
            eprintln!("chatd-load: {e}");
            return ExitCode::from(2);
        }
    };
    progress.end();
    if args.json {
        eprint!("{}", report.human());
        println!("{}", report.json());
    } else {
        print!("{}", report.human());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn settings(args: &Args) -> Result<Settings, SettingsError> {
    let scenario = args.scenario.ok_or_else(|| SettingsError {
        flag: "SCENARIO",
        reason: "give one: burst, rate, idle or connect (see --help)".to_owned(),
    })?;
    let seconds = |flag: &'static str, value: f64| {
        Duration::try_from_secs_f64(value).map_err(|_| SettingsError {
            flag,
            reason: format!("{value} is not a number of seconds"),
        })
    };
    let welcome = load::wire::unescape(&args.welcome);
    let addrs = if args.addr.is_empty() {
        vec![resolve_target("127.0.0.1:3001", args.allow_remote)?]
    } else {
        args.addr
            .iter()
            .map(|addr| resolve_target(addr, args.allow_remote))
            .collect::<Result<Vec<_>, _>>()?
    };
    let addr = addrs[0];
    let trust = match (args.tls, args.tls_fingerprint) {
        (false, Some(_)) => {
            return Err(SettingsError {
                flag: "--tls-fingerprint",
                reason: "needs --tls".into(),
            })
        }
        (false, None) => None,
        (true, Some(fingerprint)) => Some(Trust::Pinned(fingerprint)),
        (true, None) => Some(Trust::NoVerificationLoadTestingOnly),
    };
    let tls = trust
        .map(|trust| TlsClient::new(addr, trust))
        .transpose()
        .map_err(|e| SettingsError {
            flag: "--tls",
            reason: format!("cannot set TLS up: {e}"),
        })?;
    let settings = Settings {
        scenario,
        addrs,
        clients: args.clients.unwrap_or_else(|| scenario.default_clients()),
        messages: args.messages,
        size: args.size,
        rate: args.rate,
        duration: seconds("--duration", args.duration)?,
        hold: seconds("--hold", args.hold)?,
        mode: args.mode,
        wire: match args.mode {
            WireMode::Text => Wire::Text(TextWire {
                join: Template::parse(&args.name_template, "{name}"),
                say: Template::parse(&args.say_template, "{payload}"),
                welcome: (!welcome.is_empty()).then(|| welcome.into_bytes()),
                room_join: Template::parse(&args.room_template, "{room}"),
                room_joined: if args.room_joined.is_empty() {
                    TextWire::default().room_joined
                } else {
                    args.room_joined
                        .iter()
                        .filter(|form| !form.is_empty())
                        .map(|form| Template::parse(form, "{room}"))
                        .collect()
                },
            }),
            WireMode::Framed => Wire::Framed,
            WireMode::Ws => Wire::Ws(WsWire::new(addr)),
        },
        name_prefix: args.name_prefix.clone(),
        rooms: args.rooms,
        room_prefix: args.room_prefix.clone(),
        server_pids: args.server_pid.clone(),
        timeout: seconds("--timeout", args.timeout)?,
        connect_batch: args.connect_batch,
        label: args.label.clone(),
        tls,
        connect_send: load::wire::unescape(&args.connect_send).into_bytes(),
    };
    settings.validate()?;
    Ok(settings)
}

/// Raises this process's open-file limit to its hard limit if `clients` sockets would not fit.
fn raise_file_limit(clients: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let wanted = clients as u64 + 64;
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|current| current >= wanted) {
        return;
    }
    let raised = Rlimit {
        current: limit
            .maximum
            .map_or(Some(wanted), |max| Some(max.min(wanted))),
        maximum: limit.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        eprintln!("chatd-load: cannot raise the open-file limit for {clients} clients: {e}");
    }
}

/// The progress line on stderr: rewritten in place on a terminal, a line each time otherwise.
struct ProgressLine {
    quiet: bool,
    in_place: bool,
    shown: bool,
}

impl ProgressLine {
    fn new(quiet: bool) -> ProgressLine {
        ProgressLine {
            quiet,
            in_place: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(&mut self, line: &str) {
        if self.quiet {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = if self.in_place {
            write!(stderr, "\r{line}\x1b[K")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
        self.shown = true;
    }

    fn end(&mut self) {
        if self.in_place && self.shown {
            eprintln!();
        }
        self.shown = false;
    }
}
