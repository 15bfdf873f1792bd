//! Validated server settings, built by the binary from its command-line flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use time::UtcOffset;

use crate::proto::{framed, Limits};
use crate::server::FloodPolicy;

/// The smallest frame limit allowed: a handshake and a short message must fit.
pub const MIN_FRAME: usize = 1024;

/// Everything the server needs to know to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
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
    /// How long a framed client may be silent before it is sent a keepalive ping.
    pub ping_interval: std::time::Duration,
    /// Keepalive pings a framed client may leave unanswered before it is closed.
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
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 3001)),
            console: true,
            max_clients: 1024,
            max_per_ip: 16,
            limit_loopback: false,
            max_outbuf: 1024 * 1024,
            outbuf_soft: 256 * 1024,
            outbuf_soft_time: std::time::Duration::from_secs(10),
            flood: Some(FloodPolicy::default()),
            name_timeout: std::time::Duration::from_secs(30),
            ping_interval: std::time::Duration::from_secs(60),
            ping_misses: 2,
            limits: Limits::default(),
            utc_offset: UtcOffset::UTC,
            data_dir: PathBuf::from("chatd-data"),
            require_account: false,
            allow_register: true,
            history: 20,
        }
    }
}

/// A setting that cannot work, named by its flag.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag, e.g. `--max-clients`.
    pub flag: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let error = |flag, reason: &str| {
            Err(ConfigError {
                flag,
                reason: reason.to_owned(),
            })
        };
        if self.max_clients == 0 {
            return error("--max-clients", "must be at least 1");
        }
        if let Some(flood) = &self.flood {
            if !(flood.burst >= 1.0 && flood.per_second > 0.0 && flood.per_second.is_finite()) {
                return error(
                    "--flood-burst",
                    "the burst must be at least 1 and the rate above 0",
                );
            }
        }
        if self.max_per_ip == 0 {
            return error("--max-per-ip", "must be at least 1");
        }
        if !(MIN_FRAME..=framed::MAX_FRAME_CAP).contains(&self.limits.max_frame) {
            return Err(ConfigError {
                flag: "--max-frame",
                reason: format!(
                    "must be from {MIN_FRAME} to {} bytes, so that every frame starts with 0x00",
                    framed::MAX_FRAME_CAP
                ),
            });
        }
        if self.limits.max_discard < self.limits.max_line {
            return Err(ConfigError {
                flag: "--max-line-discard",
                reason: format!(
                    "must be at least the line limit, {} bytes",
                    self.limits.max_line
                ),
            });
        }
        if self.max_outbuf < 64 * 1024 {
            return error(
                "--max-outbuf",
                "must be at least 65536 bytes, or one help text would not fit",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_flag() {
        let config = Config {
            max_clients: 0,
            ..Config::default()
        };
        assert_eq!(config.validate().unwrap_err().flag, "--max-clients");
        let config = Config {
            max_outbuf: 10,
            ..Config::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string().split(':').next(),
            Some("--max-outbuf")
        );
        for max_frame in [MIN_FRAME - 1, framed::MAX_FRAME_CAP + 1] {
            let config = Config {
                limits: Limits {
                    max_frame,
                    ..Limits::default()
                },
                ..Config::default()
            };
            assert_eq!(config.validate().unwrap_err().flag, "--max-frame");
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
}
