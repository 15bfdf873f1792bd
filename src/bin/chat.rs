//! `chat`: the framed-mode client for chatd. Parse the flags and hand over to the library: the
//! window when stdin and stdout are a terminal, else the scriptable line mode.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;

use chatd::client::tls::{known, TlsOptions};
use chatd::client::{self, Options, DEFAULT_ADDR};
use chatd::tls::Fingerprint;

/// Join a chatd room. On a terminal, a window: users on the left, the chat in the middle, a line
/// to type in below (it asks for the server and name first when they are not given). Otherwise
/// lines: typed lines are said, /commands go to the server, /ping times the round trip, /quit or
/// the end of input leaves, and it exits 0 when you left and the server closed.
///
/// TLS (--tls, or a tls://HOST:PORT address) verifies the server's certificate against the
/// system's roots or --tls-ca; one that does not verify (self-signed) is trusted on first use as
/// ssh does, its fingerprint kept in ~/.config/chatd/known_servers.
#[derive(FromArgs)]
struct Args {
    /// the name to join under (asked for if not given)
    #[argh(option)]
    name: Option<String>,
    /// plain lines on stdin and stdout even on a terminal, as in a script
    #[argh(switch)]
    lines: bool,
    /// connect with TLS (as a tls:// address does)
    #[argh(switch)]
    tls: bool,
    /// trust the certificates of this PEM file instead of the system's (implies --tls)
    #[argh(option)]
    tls_ca: Option<PathBuf>,
    /// the server's certificate must have this fingerprint, SHA256:AB:CD:... as `chatd tls
    /// fingerprint` prints it (implies --tls)
    #[argh(option)]
    tls_fingerprint: Option<Fingerprint>,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    /// the server, HOST:PORT or HOST (default 127.0.0.1:3001)
    #[argh(positional)]
    addr: Option<String>,
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        println!("chat {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let window = !args.lines && io::stdin().is_terminal() && io::stdout().is_terminal();
    let tls = args.tls || args.tls_ca.is_some() || args.tls_fingerprint.is_some();
    let tls_options = TlsOptions {
        ca: args.tls_ca,
        fingerprint: args.tls_fingerprint,
        known_servers: known::user_path(),
    };
    let result = if window {
        client::ui::run(args.addr, args.name, tls, tls_options)
    } else {
        client::run(Options {
            addr: args.addr.unwrap_or_else(|| DEFAULT_ADDR.to_owned()),
            name: args.name,
            tls,
            tls_options,
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat: {error}");
            ExitCode::FAILURE
        }
    }
}
