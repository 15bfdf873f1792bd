//! Where to connect, as the user wrote it: `HOST`, `HOST:PORT`, `[IPV6]:PORT`, each with an
//! optional `tls://` in front.

use std::fmt;

use super::DEFAULT_PORT;

/// A server to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host name or address (an IPv6 address without brackets).
    pub host: String,
    /// The port (3001 when none is given).
    pub port: u16,
    /// Whether to speak TLS (`tls://`, or `--tls`).
    pub tls: bool,
}

impl Target {
    /// Reads `addr`; `tls` is `--tls`, which a `tls://` in `addr` also turns on.
    pub fn parse(addr: &str, tls: bool) -> Result<Target, String> {
        let addr = addr.trim();
        let (rest, tls) = match addr.get(..6) {
            Some(scheme) if scheme.eq_ignore_ascii_case("tls://") => (&addr[6..], true),
            _ => (addr, tls),
        };
        let bad_port = |port: &str| format!("{port:?} is not a port number (1-65535)");
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(format!("{addr:?}: no ] after the IPv6 address"));
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("{addr:?}: expected :PORT after ]")),
                },
            }
        } else {
            match rest.matches(':').count() {
                0 => (rest, None),
                // More than one colon without brackets: a bare IPv6 address.
                1 => match rest.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (rest, None),
                },
                _ => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{addr:?}: no host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(bad_port(port)),
            },
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// `HOST:PORT` (an IPv6 address in brackets), as connections are named in messages.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16, tls: bool) -> Result<Target, String> {
        Ok(Target {
            host: host.into(),
            port,
            tls,
        })
    }

    #[test]
    fn hosts_ports_brackets_and_the_tls_scheme() {
        assert_eq!(
            Target::parse("localhost", false),
            target("localhost", 3001, false)
        );
        assert_eq!(Target::parse("h:7", false), target("h", 7, false));
        assert_eq!(Target::parse("h:7", true), target("h", 7, true));
        assert_eq!(Target::parse("tls://h:7", false), target("h", 7, true));
        assert_eq!(Target::parse("TLS://h", false), target("h", 3001, true));
        assert_eq!(Target::parse("[::1]:9", false), target("::1", 9, false));
        assert_eq!(
            Target::parse("tls://[::1]", false),
            target("::1", 3001, true)
        );
        assert_eq!(Target::parse("::1", false), target("::1", 3001, false));
        assert!(Target::parse("h:0", false).is_err());
        assert!(Target::parse("h:x", false).is_err());
        assert!(Target::parse("tls://", false).is_err());
        assert!(Target::parse("[::1", false).is_err());
        assert_eq!(
            Target::parse("[::1]:9", true).map(|t| t.to_string()),
            Ok("[::1]:9".into())
        );
    }
}
