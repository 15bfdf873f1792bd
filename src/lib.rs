//! chatd: a one-thread chat server for a team, a class or a LAN.
//!
//! # Layout
//!
//! Three layers with one-way dependencies: codecs and core know nothing of sockets or clocks;
//! the shell owns every socket and calls into both.
//!
//! - [`proto`]: codecs. Bytes in, [`proto::ClientMsg`] out; [`proto::ServerMsg`] back to bytes.
//!   [`proto::msg`] is the typed vocabulary every layer speaks. [`proto::telnet`] is a sans-IO
//!   layer in front of the text decoder: telnet commands out, their answers back. [`proto::web`]
//!   is the browser page's JSON, each message encoded once as a whole WebSocket frame.
//!   [`proto::irc`] is IRC: the lines every IRC recipient shares (encoded once with tags and once
//!   without), and [`proto::irc::IrcSession`], the sans-IO per-connection IRC state (registration,
//!   capabilities, the nick, which command the core's replies answer).
//! - [`core`]: the chat. [`core::Chat::handle`] takes one [`core::Input`] and the time, changes the
//!   room, and appends [`core::Action`]s (deliver this to these, close that, stop) to an outbox.
//!   Every chat rule lives and is tested here. [`core::cluster`] is its cluster mode: what changes
//!   the chat is published to one ordered log and applied from it, identically at every node.
//! - [`server`]: the mio shell. One `Poll` over the listener, the console, signals and every client;
//!   bounded buffers; write interest only while output is pending; timers as the poll timeout.
//!   [`server::stack`] holds each connection's sans-IO layers below the codecs: the sniffer that
//!   tells TLS, framed, HTTP, IRC and text apart on one port, the rustls layer, the HTTP layer
//!   (the embedded page and the upgrade) and the WebSocket framing (tungstenite, sans-IO). With
//!   `--metrics-listen` the same `Poll` serves `/metrics` and `/healthz` from plain counters.
//! - [`accounts`]: registered names and bans: a pure model, the files that hold it, password hashing.
//! - [`rooms`]: the persistent rooms on disk: a pure model, the file that holds it, `chatd room`.
//! - [`names`]: the user and room name rules, shared by the core, both files, `chatd user` and
//!   `chatd room`.
//! - [`history`]: every room's lines and the direct messages on disk (SQLite), and the offline
//!   mailbox; the core asks for it with [`history::Job`]s, a thread of the server does them.
//! - [`datadir`]: the data directory's locked, atomic file replacement, under both stores.
//! - [`console`]: the host console on stdin/stdout; at a terminal it edits the line typed itself
//!   and draws it again under incoming lines.
//! - [`client`]: the `chat` client: a pure session over [`proto::framed`], a line loop for scripts,
//!   and [`client::ui`], the terminal window (a pure model, a ratatui view, a thin mio loop);
//!   [`client::tls`] is the TLS layer both share, with the trust-on-first-use rule and file.
//! - [`stdin`]: typed lines from stdin inside a mio loop, for the console and the client.
//! - [`config`]: validated settings; the binaries in `src/bin/` only parse flags into one.
//! - [`service`]: running as a service: the settings file under the flags, the log file that
//!   SIGHUP opens again, the journal's log lines, systemd's READY and STOPPING notifications.
//! - [`tls`]: certificates and their fingerprints, for the server and the `chat` client.
//! - [`cluster`]: `--cluster`: the link to Redis over which several nodes are one chat (the log's
//!   entries, the name leases, the helper threads); the shell's bridge is `server/cluster.rs`.
//! - [`load`]: `chatd-load`, the load generator that measures chatd (or any line-based chat server).

#![deny(missing_docs, unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod accounts;
pub mod client;
pub mod cluster;
pub mod config;
pub mod console;
pub mod core;
pub mod datadir;
pub mod history;
pub mod load;
pub mod names;
pub mod proto;
pub mod rooms;
pub mod server;
pub mod service;
pub mod stdin;
pub mod tls;

pub use config::Config;
pub use server::Server;
