//! End-to-end fan-out on loopback: chatd's `Server` on a thread of this process, 20 clients here.
//!
//! Each iteration, client 0 sends 100 chat lines of 64 bytes in one write, and each of the 19
//! others reads until it has all 100: 1,900 deliveries, reported per delivery. This is the whole
//! path (read, decode, core, encode, queue, write, and the console line chatd prints per chat
//! line) on one machine, so the figure includes the kernel's loopback TCP and is noisier than
//! `benches/core.rs`; `chatd-load` measures the same path at scale and reports CPU per delivery.
//!
//! chatd shows every chat line on its console (stdout), which is this process's stdout; while the
//! bench runs, stdout goes through a pipe that drops those lines (they start with `[`) and passes
//! criterion's own output on.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use chatd::accounts::store::Store;
use chatd::{Config, Server};

const CLIENTS: usize = 20;
const LINES_PER_ITERATION: usize = 100;
/// How long any one wait may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(10);

fn main() {
    let stdout_filter = ChatLineFilter::install();
    let data = TempDir::new();
    let addr = start_server(&data.0);
    let mut clients: Vec<BenchClient> = (0..CLIENTS)
        .map(|i| BenchClient::join(addr, &format!("bench{i}")))
        .collect();
    settle(&mut clients);
    let burst = burst_bytes();

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("e2e");
    group.throughput(Throughput::Elements(
        (LINES_PER_ITERATION * (CLIENTS - 1)) as u64,
    ));
    group.bench_function("fan_out_100_lines_to_19_clients", |b| {
        b.iter(|| {
            let (sender, receivers) = clients.split_at_mut(1);
            sender[0].send(&burst);
            for receiver in receivers {
                receiver.read_lines(LINES_PER_ITERATION);
            }
        })
    });
    group.finish();
    criterion.final_summary();
    if let Some(filter) = stdout_filter {
        filter.remove();
    }
    drop(data);
    // End here, clients still connected: dropping them first would have chatd print their exits.
    std::process::exit(0);
}

/// Starts chatd on 127.0.0.1:0 in a thread, with its data in `dir`; returns where it listens.
fn start_server(dir: &std::path::Path) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    let config = Config {
        listen: addr,
        console: false,
        max_clients: 64,
        max_outbuf: 64 << 20,
        outbuf_soft: 64 << 20,
        // The bench floods on purpose.
        flood: None,
        data_dir: dir.to_path_buf(),
        history: 0,
        ..Config::default()
    };
    let store = Store::open(dir).expect("open a temporary data directory");
    let registry = store.load().expect("read the empty account files");
    let (started, is_started) = mpsc::channel();
    thread::Builder::new()
        .name("chatd".into())
        .spawn(
            move || match Server::new(listener, config, store, registry, None) {
                Ok(server) => {
                    let _ = started.send(Ok(()));
                    if let Err(e) = server.run() {
                        eprintln!("chatd stopped: {e}");
                    }
                }
                Err(e) => {
                    let _ = started.send(Err(e.to_string()));
                }
            },
        )
        .expect("spawn the server thread");
    match is_started.recv_timeout(PATIENCE) {
        Ok(Ok(())) => addr,
        Ok(Err(e)) => panic!("chatd did not start: {e}"),
        Err(e) => panic!("chatd did not start: {e}"),
    }
}

/// 100 chat lines of 64 bytes, each with its line end.
fn burst_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..LINES_PER_ITERATION {
        let line = format!("bench line {i:03} ");
        bytes.extend_from_slice(line.as_bytes());
        bytes.resize(bytes.len() + 64 - line.len(), b'x');
        bytes.push(b'\n');
    }
    bytes
}

/// Waits until every client has read everything sent before the bench: the others' entries.
fn settle(clients: &mut [BenchClient]) {
    clients[0].send(b"settle0\n");
    clients[1].send(b"settle1\n");
    clients[0].read_until("> settle1");
    for client in &mut clients[1..] {
        client.read_until("> settle0");
    }
    // Client 0 may still have to read "settle1"-era lines: none follow it, so it is settled too.
}

/// A blocking loopback client with a deadline on every read.
struct BenchClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` read but not yet looked at by `read_until`.
    pending: Vec<u8>,
}

impl BenchClient {
    fn join(addr: SocketAddr, name: &str) -> BenchClient {
        let stream = TcpStream::connect(addr).expect("connect to chatd");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("set a read timeout");
        let mut client = BenchClient {
            stream,
            buf: vec![0; 256 * 1024],
            pending: Vec::new(),
        };
        client.read_until("Enter your name:");
        client.send(format!("{name}\n").as_bytes());
        client.read_until("[*] Welcome");
        client
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send to chatd");
    }

    fn read_some(&mut self) -> usize {
        match self.stream.read(&mut self.buf) {
            Ok(0) => panic!("chatd closed the connection"),
            Ok(n) => n,
            Err(e) => panic!("read from chatd: {e}"),
        }
    }

    /// Reads until a line containing `needle` has arrived; drops everything up to its end.
    fn read_until(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            while let Some(lf) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=lf).collect();
                if String::from_utf8_lossy(&line).contains(needle) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no {needle:?} from chatd");
            let n = self.read_some();
            self.pending.extend_from_slice(&self.buf[..n]);
        }
    }

    /// Reads exactly `count` more lines (nothing else is sent while the bench runs).
    fn read_lines(&mut self, count: usize) {
        let mut left = count;
        while left > 0 {
            let n = self.read_some();
            let lines = self.buf[..n].iter().filter(|&&b| b == b'\n').count();
            assert!(lines <= left, "more lines than were sent");
            left -= lines;
        }
    }
}

/// A data directory for the server, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("chatd-bench-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary data directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// This process's stdout diverted through a pipe that drops chatd's console lines.
struct ChatLineFilter {
    original: OwnedFd,
    thread: JoinHandle<()>,
}

impl ChatLineFilter {
    /// Diverts stdout; `None` (and stdout as it was) if that cannot be done.
    fn install() -> Option<ChatLineFilter> {
        let original = io::stdout().as_fd().try_clone_to_owned().ok()?;
        let passed_on = original.try_clone().ok()?;
        let (reader, writer) = io::pipe().ok()?;
        rustix::stdio::dup2_stdout(&writer).ok()?;
        drop(writer);
        let thread = thread::spawn(move || {
            let mut out = File::from(passed_on);
            for line in BufReader::new(reader).split(b'\n') {
                let Ok(line) = line else { return };
                if !line.starts_with(b"[") {
                    let _ = out.write_all(&line).and_then(|()| out.write_all(b"\n"));
                }
            }
        });
        Some(ChatLineFilter { original, thread })
    }

    /// Puts stdout back and waits until everything written so far has been passed on.
    fn remove(self) {
        let _ = io::stdout().flush();
        // Closing the pipe's last write end (fd 1) ends the filter thread once it has drained.
        if rustix::stdio::dup2_stdout(&self.original).is_ok() {
            let _ = self.thread.join();
        }
    }
}
