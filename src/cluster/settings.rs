//! `--cluster`, `--node-name` and `--cluster-lease-ms`, checked at start.

use std::time::Duration;

use crate::config::ConfigError;

/// The default name lease and heartbeat time to live.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The default of [`ClusterConfig::queue_max`]: about 10 pipelines' worth, a second or more of
/// Redis not answering at a busy chat's pace.
pub const DEFAULT_QUEUE_MAX: usize = 10_000;
/// The shortest lease `--cluster-lease-ms` takes (the tests' short leases are 1 to 2 s).
pub const MIN_LEASE_MS: u64 = 500;
/// The longest lease `--cluster-lease-ms` takes.
pub const MAX_LEASE_MS: u64 = 600_000;

/// How a node joins a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Redis server, `redis://HOST:PORT` (checked).
    pub url: String,
    /// This node's id in the log's entries and its Redis keys.
    pub node: String,
    /// How long a name lease and the node's heartbeat live unless renewed; they are renewed
    /// every fifth of it, and the other nodes' heartbeats are checked every tenth.
    pub lease: Duration,
    /// About how many entries the log keeps (`XADD ... MAXLEN ~`; the hidden
    /// `--cluster-log-max`, for tests).
    pub log_max: u64,
    /// Most entries waiting for the writer (Redis reachable but slow) before lines and logins
    /// are refused as when degraded (the hidden `--cluster-queue-max`, for tests).
    pub queue_max: usize,
}

impl ClusterConfig {
    /// Checks `--cluster URL`, `--node-name NAME` (default: the host name and the pid) and
    /// `--cluster-lease-ms MS`; the error names the flag and says what it takes.
    pub fn parse(
        url: &str,
        node: Option<&str>,
        lease_ms: u64,
    ) -> Result<ClusterConfig, ConfigError> {
        check_url(url)?;
        let node = match node {
            Some(node) => node.to_owned(),
            None => format!("{}-{}", crate::config::host_name(), std::process::id()),
        };
        let node_ok = !node.is_empty()
            && node.len() <= 100
            && node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !node_ok {
            return Err(ConfigError::new(
                "--node-name",
                &node,
                "must be 1 to 100 letters, digits, '-', '_' or '.'",
            ));
        }
        if !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&lease_ms) {
            return Err(ConfigError::new(
                "--cluster-lease-ms",
                lease_ms,
                format!("must be from {MIN_LEASE_MS} to {MAX_LEASE_MS}"),
            ));
        }
        Ok(ClusterConfig {
            url: url.to_owned(),
            node,
            lease: Duration::from_millis(lease_ms),
            log_max: super::keys::LOG_MAXLEN,
            queue_max: DEFAULT_QUEUE_MAX,
        })
    }

    /// How often the node's heartbeat and its users' leases are renewed.
    pub fn beat(&self) -> Duration {
        self.lease / 5
    }

    /// How often the other nodes' heartbeats are checked.
    pub fn check(&self) -> Duration {
        self.lease / 10
    }
}

/// `redis://HOST:PORT` (the port may be left out for 6379, a `/DB` number may follow), as the
/// `redis` crate reads it; anything else is refused before the server starts.
pub fn check_url(url: &str) -> Result<(), ConfigError> {
    let allowed = "must be redis://HOST:PORT, e.g. redis://127.0.0.1:6379";
    let Some(rest) = url.strip_prefix("redis://") else {
        return Err(ConfigError::new("--cluster", url, allowed));
    };
    let host = rest.rsplit('@').next().unwrap_or(rest);
    let host = host.split('/').next().unwrap_or(host);
    if host.is_empty() || host.starts_with(':') {
        return Err(ConfigError::new("--cluster", url, allowed));
    }
    match redis::Client::open(url) {
        Ok(_) => Ok(()),
        Err(e) => Err(ConfigError::new(
            "--cluster",
            url,
            format!("{allowed} ({e})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_url_with_host_and_port_is_taken() {
        let config = ClusterConfig::parse("redis://127.0.0.1:6380", Some("a1"), 10_000).unwrap();
        assert_eq!(config.url, "redis://127.0.0.1:6380");
        assert_eq!(config.node, "a1");
        assert_eq!(config.beat(), Duration::from_secs(2));
        assert_eq!(config.check(), Duration::from_secs(1));
    }

    #[test]
    fn a_bad_url_names_the_flag_and_the_form_it_takes() {
        for url in [
            "127.0.0.1:6379",
            "http://localhost:6379",
            "redis://",
            "redis://:6379",
            "redis://host:port",
        ] {
            let e = ClusterConfig::parse(url, Some("a"), 10_000).unwrap_err();
            assert_eq!(e.flag, "--cluster", "{url}");
            assert!(
                e.allowed.starts_with("must be redis://HOST:PORT"),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn node_names_and_leases_out_of_range_are_refused() {
        let e = ClusterConfig::parse("redis://h:1", Some("a b"), 10_000).unwrap_err();
        assert_eq!(e.flag, "--node-name");
        let e = ClusterConfig::parse("redis://h:1", Some("a"), 10).unwrap_err();
        assert_eq!(e.flag, "--cluster-lease-ms");
        let default = ClusterConfig::parse("redis://h:1", None, 10_000).unwrap();
        assert!(default.node.ends_with(&format!("-{}", std::process::id())));
    }
}
