//! `chat`: the framed-mode client for chatd. Parse the flags and hand over to the library: the
//! window when stdin and stdout are a terminal, else the scriptable line mode.

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use argh::FromArgs;

use chatd::client::{self, Options, DEFAULT_ADDR};

/// Join a chatd room. On a terminal, a window: users on the left, the chat in the middle, a line
/// to type in below (it asks for the server and name first when they are not given). Otherwise
/// lines: typed lines are said, /commands go to the server, /ping times the round trip, /quit or
/// the end of input leaves, and it exits 0 when you left and the server closed.
#[derive(FromArgs)]
struct Args {
    /// the name to join under (asked for if not given)
    #[argh(option)]
    name: Option<String>,
    /// plain lines on stdin and stdout even on a terminal, as in a script
    #[argh(switch)]
    lines: bool,
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
    let result = if window {
        client::ui::run(args.addr, args.name)
    } else {
        client::run(Options {
            addr: args.addr.unwrap_or_else(|| DEFAULT_ADDR.to_owned()),
            name: args.name,
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
