//! Several nodes of one cluster on one machine, behind one port: every node's listener is bound
//! with `SO_REUSEPORT` (the kernel spreads new connections over the processes listening), and
//! `chatd --nodes N` starts N - 1 more copies of itself, which it stops when it stops.
//!
//! A started node gets the same flags, except: the actual `--listen` and `--listen-irc`
//! addresses (so a port of 0 is shared too), `--metrics-listen` on the next port up per node
//! (node K serves its own figures on the first node's port + K), no console, its number as
//! `--node-index K` (which also keeps it from starting nodes of its own), its own history file
//! in the shared data directory ([`history_file`]), no systemd
//! notification socket (only the first node speaks to systemd), and it ends when the first node
//! dies, however that happens (the parent-death signal).

use std::ffi::{OsStr, OsString};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::net::{sockopt, AddressFamily, SocketType};
use rustix::process::{Pid, Signal};

/// How long stopping waits for the started nodes to end before killing them.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Binds `addr` so that other processes may listen on it too (`SO_REUSEPORT`, with
/// `SO_REUSEADDR` as `std` sets it).
pub fn bind_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let socket: OwnedFd = rustix::net::socket(family, SocketType::STREAM, None)?;
    sockopt::set_socket_reuseaddr(&socket, true)?;
    sockopt::set_socket_reuseport(&socket, true)?;
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, 1024)?;
    Ok(TcpListener::from(socket))
}

/// Where the first node listens, for the nodes it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addresses {
    /// Its `--listen` address, as bound.
    pub listen: SocketAddr,
    /// Its `--listen-irc` address, as bound.
    pub irc: Option<SocketAddr>,
    /// Its `--metrics-listen` address, as bound.
    pub metrics: Option<SocketAddr>,
}

/// The flags given to node `index` (1, 2, ...): `original` (the first node's, without the program
/// name) with the flags named in the module's doc replaced.
pub fn node_args(original: &[OsString], index: usize, at: Addresses) -> Vec<OsString> {
    const REPLACED: [&str; 5] = [
        "--nodes",
        "--listen",
        "--listen-irc",
        "--metrics-listen",
        "--node-index",
    ];
    let mut args = Vec::with_capacity(original.len() + 8);
    let mut given = original.iter();
    while let Some(arg) = given.next() {
        if REPLACED.iter().any(|flag| OsStr::new(flag) == arg) {
            given.next();
        } else if arg != OsStr::new("--no-console") {
            args.push(arg.clone());
        }
    }
    let mut add = |flag: &str, value: String| {
        args.push(flag.into());
        args.push(value.into());
    };
    add("--listen", at.listen.to_string());
    if let Some(irc) = at.irc {
        add("--listen-irc", irc.to_string());
    }
    if let Some(mut metrics) = at.metrics {
        metrics.set_port(metrics.port().saturating_add(index as u16));
        add("--metrics-listen", metrics.to_string());
    }
    add("--node-index", index.to_string());
    args.push("--no-console".into());
    args
}

/// The nodes this process started.
#[derive(Debug)]
pub struct Nodes {
    children: Vec<Child>,
}

impl Nodes {
    /// Starts nodes 1 to `count - 1` of this program with [`node_args`].
    pub fn start(count: usize, at: Addresses) -> io::Result<Nodes> {
        let program = std::env::current_exe()?;
        let original: Vec<OsString> = std::env::args_os().skip(1).collect();
        let mut nodes = Nodes {
            children: Vec::new(),
        };
        for index in 1..count {
            let child = Command::new(&program)
                .args(node_args(&original, index, at))
                .env_remove("NOTIFY_SOCKET")
                .stdin(Stdio::null())
                .spawn()?;
            log::info!("started node {index} as process {}", child.id());
            nodes.children.push(child);
        }
        Ok(nodes)
    }

    /// Asks every node to stop (SIGTERM), waits for them a while, then kills what is left.
    pub fn stop(mut self) {
        for child in &self.children {
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, Signal::TERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for child in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        log::warn!("node process {} did not stop; killing it", child.id());
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

/// The history file of node `index` started by `--nodes` in the shared data directory: each
/// node keeps every line, so each has a file of its own.
pub fn history_file(index: usize) -> String {
    format!("history-node{index}.sqlite")
}

/// Makes this process (a node started by another) end when the process that started it does.
pub fn end_with_parent() -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn a_started_node_gets_the_bound_addresses_its_index_and_no_console() {
        let at = Addresses {
            listen: "127.0.0.1:4001".parse().unwrap(),
            irc: Some("127.0.0.1:6667".parse().unwrap()),
            metrics: Some("127.0.0.1:9100".parse().unwrap()),
        };
        let given = args(
            "--cluster redis://127.0.0.1:6379 --nodes 3 --listen 127.0.0.1:0 --listen-irc \
             127.0.0.1:0 --metrics-listen 127.0.0.1:9100 --history 5 --no-console",
        );
        assert_eq!(
            node_args(&given, 2, at),
            args(
                "--cluster redis://127.0.0.1:6379 --history 5 --listen 127.0.0.1:4001 \
                 --listen-irc 127.0.0.1:6667 --metrics-listen 127.0.0.1:9102 --node-index 2 \
                 --no-console"
            )
        );
        let plain = Addresses {
            irc: None,
            metrics: None,
            ..at
        };
        assert_eq!(
            node_args(&args("--nodes 2"), 1, plain),
            args("--listen 127.0.0.1:4001 --node-index 1 --no-console")
        );
    }

    #[test]
    fn two_listeners_share_one_port() {
        let first = bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind_shared(addr).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        assert!(
            TcpListener::bind(addr).is_err(),
            "a plain bind must still be refused"
        );
    }
}
