//! `chat`: the framed-mode client for chatd. Parse the flags and hand over to the library.

use std::process::ExitCode;

use argh::FromArgs;

use chatd::client::{self, Options};

/// Join a chatd room: typed lines are said, /commands go to the server, /ping times the round
/// trip, /quit or the end of input leaves. Exits 0 when you left and the server closed.
#[derive(FromArgs)]
struct Args {
    /// the name to join under (asked for on stdin if not given)
    #[argh(option)]
    name: Option<String>,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
    /// the server, HOST:PORT or HOST (default 127.0.0.1:3001)
    #[argh(positional, default = "String::from(\"127.0.0.1:3001\")")]
    addr: String,
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        println!("chat {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let options = Options {
        addr: args.addr,
        name: args.name,
    };
    match client::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat: {error}");
            ExitCode::FAILURE
        }
    }
}
