//! `chatd-load`: a load generator for chatd and any other line-based chat server.
//!
//! N clients join with unique names, then send payloads that carry their sender, a sequence
//! number and a send time read from the tool's one monotonic clock; every other client checks
//! what it receives. So one run counts lost and duplicated deliveries and measures latency end to
//! end, and with the server's process id it reads the server's CPU time and memory from /proc.
//!
//! - [`settings`]: what a run does ([`Scenario`]: burst, rate, idle), validated.
//! - [`wire`]: how clients join, say a payload, and read what comes back (text, framed).
//! - [`ws`]: `--mode ws`: the upgrade and the JSON messages in WebSocket frames.
//! - [`payload`]: the marker each message carries.
//! - [`tally`], [`histogram`], [`lines`]: the pure accounting behind the figures.
//! - [`tls`]: `--tls`: the client sessions and how they check the server's certificate.
//! - [`connect`]: the connect scenario's loop (new connections per second).
//! - [`procfs`]: CPU time and memory from /proc.
//! - [`driver`]: the mio loop, one thread, every connection.
//! - [`report`]: the figures, for a person or as JSON.

pub mod connect;
pub mod driver;
pub mod histogram;
pub mod lines;
pub mod payload;
pub mod procfs;
pub mod report;
pub mod settings;
pub mod tally;
pub mod tls;
pub mod wire;
pub mod ws;

pub use driver::{run, LoadError, Progress};
pub use report::Report;
pub use settings::{resolve_target, Scenario, Settings, SettingsError};
pub use wire::{Template, TextWire, Wire, WireMode};
pub use ws::WsWire;
