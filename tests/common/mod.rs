//! Shared helpers for the integration tests: the real `chatd` binary on a loopback port, and
//! line-oriented TCP clients with deadlines.
//!
//! Nothing here sleeps blindly: every wait is for a line, an end of file or an exit, with a
//! deadline, and fails with what was received meanwhile. Every loop is bounded in time.

#![allow(dead_code)] // Each test file uses a different part of this module.

pub mod tls;
pub mod tmux;
pub mod web;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single expected thing may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The name prompt, the last line of the greeting.
pub const PROMPT: &str = "Enter your name:";

/// The line every connection gets when the server stops.
pub const SHUTDOWN_LINE: &str = "[*] The server is shutting down. Bye!";

/// What a line is expected to look like: a substring (`&str`, `String`) or a predicate.
pub trait Matcher {
    /// Whether `line` is the one wanted.
    fn matches(&self, line: &str) -> bool;
    /// How to name what was wanted in a failure message.
    fn describe(&self) -> String;
}

impl Matcher for &str {
    fn matches(&self, line: &str) -> bool {
        line.contains(*self)
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl Matcher for String {
    fn matches(&self, line: &str) -> bool {
        line.contains(self.as_str())
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl Matcher for &String {
    fn matches(&self, line: &str) -> bool {
        line.contains(self.as_str())
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl<F: Fn(&str) -> bool> Matcher for F {
    fn matches(&self, line: &str) -> bool {
        self(line)
    }
    fn describe(&self) -> String {
        "a line matching the predicate".to_owned()
    }
}

/// Spawns a thread that sends each line of `source` (lossily decoded, line end stripped).
fn line_pump(source: impl Read + Send + 'static, what: &'static str) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("chatd {what}"))
        .spawn(move || {
            let mut reader = BufReader::new(source);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\n', '\r']).to_owned();
                        if tx.send(text).is_err() {
                            // The test is gone; keep draining so the server never blocks.
                            let _ = io::copy(&mut reader, &mut io::sink());
                            return;
                        }
                    }
                }
            }
        })
        .expect("spawn a reader thread");
    rx
}

/// Receives from `rx` until a line matches, failing after `timeout` with every line seen.
#[track_caller]
fn expect_from(rx: &Receiver<String>, what: &str, m: impl Matcher, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if m.matches(&line) => return line,
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Timeout) => panic!(
                "{what}: no {} within {timeout:?}; saw {seen:#?}",
                m.describe()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "{what}: closed before {} arrived; saw {seen:#?}",
                m.describe()
            ),
        }
    }
}

/// A fresh data directory under the system's temp dir, removed when dropped.
pub struct DataDir {
    path: std::path::PathBuf,
}

impl DataDir {
    /// A new, empty, uniquely named directory.
    pub fn new() -> DataDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("chatd-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a test data dir");
        DataDir { path }
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// It as a command-line argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("temp dir path is UTF-8")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Starts `chatd ARGS` (in `cwd` if given) with `stdin` written to it and closed, stdout and
/// stderr piped, never inheriting the terminal.
pub fn spawn_chatd(args: &[&str], stdin: &str, cwd: Option<&std::path::Path>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatd"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn().expect("spawn chatd");
    let mut pipe = child.stdin.take().expect("piped stdin");
    // The child may exit without reading (e.g. a bad name); a broken pipe is fine then.
    let _ = pipe.write_all(stdin.as_bytes());
    child
}

/// Waits for `child` to exit within `limit`, polling (killing it by its PID past the limit),
/// and collects its output.
#[track_caller]
pub fn finish(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait().expect("wait for chatd") {
            Some(_) => return child.wait_with_output().expect("read chatd's output"),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("read chatd's output");
                panic!("chatd did not exit within {limit:?}: {output:?}");
            }
            None => thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Runs `chatd ARGS` (in `cwd` if given) with `stdin` to its end, within `limit`; returns
/// (exit code, stdout, stderr).
#[track_caller]
pub fn run_chatd(
    args: &[&str],
    stdin: &str,
    cwd: Option<&std::path::Path>,
    limit: Duration,
) -> (i32, String, String) {
    let output = finish(spawn_chatd(args, stdin, cwd), limit);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// How to start a server, beyond its flags.
#[derive(Default)]
struct Launch {
    /// `bash -c SCRIPT`, which must exec the binary as `$0`, instead of the binary itself.
    script: Option<String>,
    /// Stdin from /dev/null rather than a pipe the test writes the console to.
    null_stdin: bool,
    /// Environment variables set besides the test's own.
    env: Vec<(String, String)>,
    /// A file stderr goes to, instead of a pipe the test reads.
    stderr: Option<std::fs::File>,
}

/// A running `chatd`, killed (by its PID) when dropped if it has not exited.
pub struct TestServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    addr: SocketAddr,
    exit: Option<ExitStatus>,
    /// The data directory it was given unless the test chose one (kept alive with the server).
    _data: Option<DataDir>,
}

impl TestServer {
    /// Starts `chatd --listen 127.0.0.1:0 EXTRA_ARGS` with stdin piped as the console.
    pub fn start(extra_args: &[&str]) -> TestServer {
        TestServer::spawn(extra_args, true)
    }

    /// Starts `chatd` with stdin from /dev/null, so it runs without a console.
    pub fn start_with_stdin_null(extra_args: &[&str]) -> TestServer {
        TestServer::spawn(extra_args, false)
    }

    /// Starts `chatd` on the data directory `data` (to restart a server on the same accounts).
    pub fn start_on(data: &DataDir, extra_args: &[&str]) -> TestServer {
        let mut args = vec!["--data-dir", data.arg()];
        args.extend_from_slice(extra_args);
        TestServer::spawn(&args, true)
    }

    /// Starts `chatd` under `ulimit -n LIMIT` with `held` extra descriptors open (inherited from
    /// the shell that starts it), so it runs out of descriptors early.
    pub fn start_with_fd_limit(limit: u32, held: u32, extra_args: &[&str]) -> TestServer {
        let holds: String = (3..3 + held).map(|fd| format!(" {fd}</dev/null")).collect();
        let script = format!("ulimit -n {limit} && exec{holds} \"$0\" \"$@\"");
        TestServer::spawn_via(Some(script), extra_args, true)
    }

    /// Starts `chatd` with the environment variables `env` set besides the test's own, and its
    /// stderr written to `stderr` instead of a pipe when given (then `expect_stderr` sees nothing).
    pub fn start_with_env(
        env: &[(&str, &str)],
        stderr: Option<std::fs::File>,
        extra_args: &[&str],
    ) -> TestServer {
        let launch = Launch {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stderr,
            ..Launch::default()
        };
        TestServer::launch(launch, extra_args)
    }

    fn spawn(extra_args: &[&str], piped_stdin: bool) -> TestServer {
        TestServer::spawn_via(None, extra_args, piped_stdin)
    }

    /// Starts the binary directly, or through `bash -c SCRIPT` (which must exec it as `$0`).
    fn spawn_via(script: Option<String>, extra_args: &[&str], piped_stdin: bool) -> TestServer {
        let launch = Launch {
            script,
            null_stdin: !piped_stdin,
            ..Launch::default()
        };
        TestServer::launch(launch, extra_args)
    }

    fn launch(launch: Launch, extra_args: &[&str]) -> TestServer {
        let Launch {
            script,
            null_stdin,
            env,
            stderr,
        } = launch;
        // Every server gets a data directory of its own unless the test names one, and listens
        // on a free loopback port unless the test says where.
        let data = (!extra_args.contains(&"--data-dir")).then(DataDir::new);
        let listen: &[&str] = if extra_args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let data_args = data
            .as_ref()
            .map(|d| vec!["--data-dir", d.arg()])
            .unwrap_or_default();
        let binary = env!("CARGO_BIN_EXE_chatd");
        let mut command = match &script {
            Some(script) => {
                let mut sh = Command::new("bash");
                sh.args(["-c", script, binary]);
                sh
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(listen)
            .args(&data_args)
            .args(extra_args)
            .envs(env)
            .stdin(if null_stdin {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(stderr.map_or_else(Stdio::piped, Stdio::from))
            .spawn()
            .expect("start chatd");
        let stdin = child.stdin.take();
        let stdout = line_pump(child.stdout.take().expect("piped stdout"), "stdout");
        let stderr = match child.stderr.take() {
            Some(pipe) => line_pump(pipe, "stderr"),
            None => mpsc::channel().1,
        };
        let mut server = TestServer {
            child,
            stdin,
            stdout,
            stderr,
            // Replaced below, once the server says where it listens.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            exit: None,
            _data: data,
        };
        let line = server.expect_stdout("chatd listening on ", TIMEOUT);
        let addr = line["chatd listening on ".len()..].trim();
        server.addr = addr
            .parse()
            .unwrap_or_else(|e| panic!("bad listening address in {line:?}: {e}"));
        assert!(server.addr.ip().is_loopback(), "{line}");
        server
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types `line` on the host console (a newline is added).
    #[track_caller]
    pub fn console(&mut self, line: &str) {
        self.console_raw(format!("{line}\n").as_bytes());
    }

    /// Writes `bytes` to the console as they are, in one write.
    #[track_caller]
    pub fn console_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("the console is piped and open");
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .expect("write to chatd's stdin");
    }

    /// Closes the console (end of file on the server's stdin).
    pub fn close_console(&mut self) {
        drop(self.stdin.take().expect("the console is piped and open"));
    }

    /// Waits for a stdout line matching `m`, skipping others; returns it.
    #[track_caller]
    pub fn expect_stdout(&mut self, m: impl Matcher, timeout: Duration) -> String {
        expect_from(&self.stdout, "chatd stdout", m, timeout)
    }

    /// The stderr lines that have arrived so far and were not taken yet.
    pub fn stderr_lines(&mut self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// Waits for a stderr line matching `m`, skipping others; returns it.
    #[track_caller]
    pub fn expect_stderr(&mut self, m: impl Matcher, timeout: Duration) -> String {
        expect_from(&self.stderr, "chatd stderr", m, timeout)
    }

    /// Types `LIST_USERS` and returns the stdout lines up to and including its answer, so a test
    /// can see everything the console showed before it.
    #[track_caller]
    pub fn console_sync(&mut self) -> Vec<String> {
        self.console("LIST_USERS");
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let done = line.starts_with("[*] Online (");
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(e) => panic!("chatd stdout: no answer to LIST_USERS ({e}); saw {seen:#?}"),
            }
        }
    }

    /// Sends a signal to the server (only while it has not been reaped, so the PID is still ours).
    #[track_caller]
    pub fn signal(&mut self, signal: rustix::process::Signal) {
        assert!(self.exit.is_none(), "the server has exited already");
        assert!(
            self.child.try_wait().expect("check the server").is_none(),
            "the server exited before the signal"
        );
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), signal)
            .expect("signal the server");
    }

    /// Waits for the server to exit, failing after `timeout`.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                self.exit = Some(status);
                return status;
            }
            if Instant::now() >= deadline {
                let stderr: Vec<String> = self.stderr.try_iter().collect();
                panic!("chatd did not exit within {timeout:?}; stderr: {stderr:#?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        self.exit.is_none() && self.child.try_wait().expect("check the server").is_none()
    }

    /// The server's resident set size and its peak, in bytes, from /proc/PID/status.
    pub fn memory(&self) -> Memory {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).expect("read /proc/PID/status");
        let field = |name: &str| -> u64 {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name} in {path}"));
            let kib: u64 = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("bad {line:?}: {e}"));
            kib * 1024
        };
        Memory {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
        }
    }

    /// CPU time (user + system) the server has used so far, from /proc/PID/stat (100 ticks/s).
    pub fn cpu_time(&self) -> Duration {
        let path = format!("/proc/{}/stat", self.pid());
        let stat = std::fs::read_to_string(&path).expect("read /proc/PID/stat");
        // Fields after the command name (which is in parentheses and may hold spaces).
        let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_millis(ticks * 10)
    }

    /// Connects a client and joins it as `name`.
    #[track_caller]
    pub fn join(&self, name: &str) -> Client {
        let mut client = Client::connect(self.addr);
        client.join(name);
        client
    }

    /// Connects a client and logs it in to the registered name `name`; returns it after the
    /// welcome.
    #[track_caller]
    pub fn login(&self, name: &str, password: &str) -> Client {
        let mut client = Client::connect(self.addr);
        client.expect_line(|l: &str| l == PROMPT);
        client.send_line(name);
        client.expect_line(|l: &str| l == "Password:");
        client.send_line(password);
        client.expect_line("[*] Welcome");
        client
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if thread::panicking() {
            // A failed test shows what each of its servers logged, to tell why.
            for line in self.stderr.try_iter() {
                eprintln!("chatd {} stderr: {line}", self.addr);
            }
        }
        drop(self.stdin.take());
        if self.exit.is_none() {
            // `Child::kill` targets our own child's PID and does nothing once it has been reaped.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A process's memory use, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    /// Resident now (VmRSS).
    pub rss: u64,
    /// Highest resident so far (VmHWM).
    pub peak: u64,
}

/// What one attempt to read a line gave.
#[derive(Debug)]
pub enum Read1 {
    /// A whole line, without its CRLF.
    Line(Vec<u8>),
    /// The server closed the connection (end of file or reset).
    Closed,
    /// Nothing whole arrived in time.
    Timeout,
}

/// A text-mode client on a real TCP connection.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
    /// Every line read so far, for failure messages.
    history: Vec<String>,
}

impl Client {
    /// Connects to `addr` (which must be loopback).
    pub fn connect(addr: SocketAddr) -> Client {
        assert!(addr.ip().is_loopback(), "tests only talk to loopback");
        let stream = TcpStream::connect(addr).expect("connect to chatd");
        stream
            .set_write_timeout(Some(TIMEOUT))
            .expect("set a write timeout");
        // Each line leaves at once, as from a person typing, not held back for an ACK.
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Client {
            stream,
            buf: Vec::new(),
            closed: false,
            history: Vec::new(),
        }
    }

    /// The client's own address (the peer address the server sees).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .expect("the socket's local address")
    }

    /// Every line read so far (without CRLF).
    pub fn history_lines(&self) -> Vec<String> {
        self.history.clone()
    }

    /// Sends `line` and a LF.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Sends `bytes` as they are.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send {} bytes: {e}", bytes.len()));
    }

    /// Sends `bytes` as they are, giving back the error if the connection is gone.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads the greeting, sends `name` and waits for the welcome; returns the welcome line.
    #[track_caller]
    pub fn join(&mut self, name: &str) -> String {
        let prompt = self.expect_line(|l: &str| l == PROMPT);
        assert_eq!(prompt, PROMPT);
        self.send_line(name);
        let welcome = self.expect_line("[*] Welcome");
        assert!(
            welcome.contains(name),
            "welcome does not name {name}: {welcome}"
        );
        welcome
    }

    /// Reads one line, raw, waiting until `deadline`. Asserts every line ends with CRLF.
    #[track_caller]
    pub fn read_raw(&mut self, deadline: Instant) -> Read1 {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=lf).collect();
                line.pop();
                assert_eq!(
                    line.last(),
                    Some(&b'\r'),
                    "a server line does not end with CRLF: {:?}",
                    String::from_utf8_lossy(&line)
                );
                line.pop();
                self.history
                    .push(String::from_utf8_lossy(&line).into_owned());
                return Read1::Line(line);
            }
            if self.closed {
                return Read1::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read1::Timeout;
            }
            let n = self.read_within(left, &mut chunk);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One read into `chunk`, waiting at most `left`; returns the bytes read (0 on timeout) and
    /// marks the connection closed on end of stream or reset.
    fn read_within(&mut self, left: Duration, chunk: &mut [u8]) -> usize {
        self.stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("set a read timeout");
        match self.stream.read(chunk) {
            Ok(0) => {
                self.closed = true;
                0
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                self.closed = true;
                0
            }
            Err(e) => panic!("read from chatd: {e}"),
        }
    }

    /// The very next line, raw (without CRLF); fails on timeout or close.
    #[track_caller]
    pub fn next_line_raw(&mut self) -> Vec<u8> {
        match self.read_raw(Instant::now() + TIMEOUT) {
            Read1::Line(line) => line,
            other => panic!(
                "expected a line, got {other:?}; lines so far: {:#?}",
                self.history
            ),
        }
    }

    /// The very next line, lossily decoded; fails on timeout or close.
    #[track_caller]
    pub fn next_line(&mut self) -> String {
        String::from_utf8_lossy(&self.next_line_raw()).into_owned()
    }

    /// Skips lines until one matches `m`; fails with the lines seen on timeout or close.
    #[track_caller]
    pub fn expect_line(&mut self, m: impl Matcher) -> String {
        match self.try_expect_line(&m, TIMEOUT) {
            Ok(line) => line,
            Err(seen) => panic!("no {} within {TIMEOUT:?}; saw {seen:#?}", m.describe()),
        }
    }

    /// Skips lines until one matches `m`, or gives back the lines seen on timeout or close.
    pub fn try_expect_line(
        &mut self,
        m: &impl Matcher,
        timeout: Duration,
    ) -> Result<String, Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.read_raw(deadline) {
                Read1::Line(line) => {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    if m.matches(&line) {
                        return Ok(line);
                    }
                    seen.push(line);
                }
                Read1::Closed => {
                    seen.push("<closed by the server>".to_owned());
                    return Err(seen);
                }
                Read1::Timeout => return Err(seen),
            }
        }
    }

    /// Reads until the server closes the connection; returns the whole lines read meanwhile.
    #[track_caller]
    pub fn expect_closed(&mut self) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match self.read_raw(deadline) {
                Read1::Line(line) => seen.push(String::from_utf8_lossy(&line).into_owned()),
                Read1::Closed => return seen,
                Read1::Timeout => panic!(
                    "the server did not close the connection within {TIMEOUT:?}; saw {seen:#?}"
                ),
            }
        }
    }

    /// Reads and throws away everything until the server closes; returns the byte count.
    #[track_caller]
    pub fn drain_until_closed(&mut self) -> usize {
        let deadline = Instant::now() + TIMEOUT;
        let mut total = std::mem::take(&mut self.buf).len();
        let mut chunk = vec![0u8; 256 * 1024];
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "not closed within {TIMEOUT:?} ({total} bytes read)"
            );
            total += self.read_within(left, &mut chunk);
        }
        total
    }

    /// Reads and throws away what comes until the server closes or `timeout` passes; returns
    /// whether it closed.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.buf.clear();
        let mut chunk = vec![0u8; 64 * 1024];
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.read_within(left, &mut chunk);
        }
        true
    }

    /// Sends `/users` and returns every line up to and including its answer: a marker that
    /// everything the server sent this client before has arrived.
    #[track_caller]
    pub fn sync(&mut self) -> Vec<String> {
        self.send_line("/users");
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            match self.read_raw(deadline) {
                Read1::Line(line) => {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    let done = line.starts_with("[*] Online (");
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                other => panic!("no answer to /users: {other:?}; saw {seen:#?}"),
            }
        }
    }

    /// Sends `byte` as TCP urgent data (`MSG_OOB`): the bytes sent before it end at its mark.
    pub fn send_urgent(&mut self, byte: u8) {
        rustix::net::send(&self.stream, &[byte], rustix::net::SendFlags::OOB)
            .expect("send an urgent byte");
    }

    /// Half-closes the sending side, as `nc -N` does at the end of its input.
    pub fn shutdown_write(&self) {
        self.stream
            .shutdown(Shutdown::Write)
            .expect("shut down the write side");
    }
}

/// If `line` is a chat line `[HH:MM:SS] FROM > TEXT`, its TEXT; checks the stamp's shape.
pub fn chat_text<'a>(line: &'a str, from: &str) -> Option<&'a str> {
    let rest = line.strip_prefix('[')?;
    let stamp = rest.get(..8)?;
    let shaped = stamp.char_indices().all(|(i, c)| match i {
        2 | 5 => c == ':',
        _ => c.is_ascii_digit(),
    });
    if !shaped {
        return None;
    }
    rest[8..]
        .strip_prefix("] ")?
        .strip_prefix(from)?
        .strip_prefix(" > ")
}

/// Asserts `line` is the chat line `[HH:MM:SS] FROM > TEXT`.
#[track_caller]
pub fn assert_chat(line: &str, from: &str, text: &str) {
    assert_eq!(
        chat_text(line, from),
        Some(text),
        "expected `[HH:MM:SS] {from} > {text}`, got {line:?}"
    );
}

/// A matcher for the chat line `[HH:MM:SS] FROM > TEXT`.
pub fn chat_line<'a>(from: &'a str, text: &'a str) -> impl Fn(&str) -> bool + 'a {
    move |line: &str| chat_text(line, from) == Some(text)
}

/// A program the test drives through its piped stdin and stdout (a TLS client such as
/// `openssl s_client` or `socat`), killed by its PID when dropped if it has not exited.
pub struct Piped {
    child: Child,
    what: String,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Piped {
    /// Starts `program ARGS` with stdin, stdout and stderr piped.
    #[track_caller]
    pub fn spawn(program: &str, args: &[&str]) -> Piped {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program} (is its Debian package installed?): {e}"));
        let stdin = child.stdin.take();
        let stdout = line_pump(child.stdout.take().expect("piped stdout"), "child stdout");
        let stderr = line_pump(child.stderr.take().expect("piped stderr"), "child stderr");
        Piped {
            child,
            what: format!("{program} {}", args.join(" ")),
            stdin,
            stdout,
            stderr,
        }
    }

    /// Writes `line` and a LF to its stdin, as a person typing it would.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("its stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.what));
    }

    /// Closes its stdin (end of file on its input).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Waits for a stdout line matching `m`, skipping others; returns it.
    #[track_caller]
    pub fn expect_line(&mut self, m: impl Matcher) -> String {
        let what = format!("{} stdout", self.what);
        expect_from(&self.stdout, &what, m, TIMEOUT)
    }

    /// Waits until its stdout ends (the connection closed and the program exited or will);
    /// returns the lines that came meanwhile.
    #[track_caller]
    pub fn expect_end(&mut self) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Disconnected) => return seen,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: stdout still open after {TIMEOUT:?}; saw {seen:#?}",
                        self.what
                    )
                }
            }
        }
    }

    /// Waits for it to exit within `TIMEOUT`; its status and every stderr line it printed.
    #[track_caller]
    pub fn wait_exit(&mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("check the child") {
                // Its stderr pipe ends with it; take what is left, bounded.
                let mut lines = Vec::new();
                while let Ok(line) = self.stderr.recv_timeout(TIMEOUT) {
                    lines.push(line);
                }
                return (status, lines);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {TIMEOUT:?}",
                self.what
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // `Child::kill` targets this child's own PID and does nothing once it has been reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server's `--log-file`, read as the operator would.
pub struct LogFile {
    path: std::path::PathBuf,
}

impl LogFile {
    /// The log file `chatd.log` in `data` (not made yet: the server makes it).
    pub fn in_dir(data: &DataDir) -> LogFile {
        LogFile {
            path: data.path().join("chatd.log"),
        }
    }

    /// Its path as an argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("temp dir path is UTF-8")
    }

    /// Its lines now.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits, bounded, until some line matches `m`; returns that line.
    #[track_caller]
    pub fn expect(&self, m: impl Matcher) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let lines = self.lines();
            if let Some(line) = lines.iter().find(|l| m.matches(l)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {} in the log within {TIMEOUT:?}:\n{}",
                m.describe(),
                lines.join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `conn N` that logged `ADDR connected` for the client at `addr`.
    #[track_caller]
    pub fn conn_of(&self, addr: SocketAddr) -> String {
        let connected = format!(" {addr} connected");
        self.conn_logging(|l: &str| l.ends_with(&connected))
    }

    /// The `conn N` named by the first line matching `m` (waited for).
    #[track_caller]
    pub fn conn_logging(&self, m: impl Matcher) -> String {
        let line = self.expect(m);
        let at = line
            .find("] conn ")
            .unwrap_or_else(|| panic!("no conn id in {line:?}"))
            + 2;
        line[at..].split(' ').take(2).collect::<Vec<_>>().join(" ")
    }

    /// Waits for the disconnect line of `conn` (as [`LogFile::conn_of`] gives it), checks it is
    /// the only one, and returns its reason.
    #[track_caller]
    pub fn disconnect_reason(&self, conn: &str) -> String {
        let ours = |l: &str| l.contains(&format!("] {conn} ")) && l.contains(" disconnected: ");
        self.expect(ours);
        let lines: Vec<String> = self.lines().into_iter().filter(|l| ours(l)).collect();
        assert_eq!(lines.len(), 1, "one disconnect line for {conn}: {lines:#?}");
        let (_, why) = lines[0].split_once(" disconnected: ").expect("a reason");
        assert!(!why.trim().is_empty(), "a reason in {:?}", lines[0]);
        why.to_owned()
    }
}

/// Adds the account `name` with `password` to `data` offline, as `chatd user add` does for an
/// operator (the password is read from stdin when it is not a terminal).
#[track_caller]
pub fn add_user(data: &DataDir, name: &str, password: &str) {
    let (code, out, err) = run_chatd(
        &["user", "--data-dir", data.arg(), "add", name],
        &format!("{password}\n"),
        None,
        TIMEOUT,
    );
    assert_eq!(code, 0, "chatd user add {name}: {out} {err}");
}

/// A `redis-server` of the test's own on a free loopback port, in a temp directory of its own,
/// with no disk persistence unless asked for (`--appendonly yes`); killed by its PID when
/// dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    aof: bool,
    dir: DataDir,
}

impl RedisServer {
    /// Starts one; with `aof`, everything it is told is also appended to its AOF file (fsync
    /// every second), so a restart keeps it.
    #[track_caller]
    pub fn start(aof: bool) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = RedisServer {
            child: None,
            port,
            aof,
            dir: DataDir::new(),
        };
        redis.spawn();
        redis
    }

    /// Its URL, for `--cluster`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection of the `redis` crate to it, for what a test does in Redis itself.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("a connection to the test's Redis")
    }

    /// Sends one inline command (words without spaces) and returns the raw RESP reply, as far
    /// as one read gets it (enough for the short replies tests look at).
    #[track_caller]
    pub fn command(&self, words: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("set a read timeout");
        stream
            .write_all(format!("{}\r\n", words.join(" ")).as_bytes())
            .expect("send to redis");
        let mut reply = vec![0u8; 64 * 1024];
        let n = io::Read::read(&mut stream, &mut reply).expect("read redis's reply");
        String::from_utf8_lossy(&reply[..n]).into_owned()
    }

    /// Stops it (SIGTERM: with AOF, what it holds is on disk) and waits for it to exit.
    #[track_caller]
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + TIMEOUT;
            while child.try_wait().expect("wait for redis-server").is_none() {
                assert!(Instant::now() < deadline, "redis-server did not stop");
                thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Sends it `signal` (SIGSTOP: reachable, its port accepting, but answering nothing).
    #[track_caller]
    pub fn signal(&self, signal: rustix::process::Signal) {
        let child = self.child.as_ref().expect("redis-server running");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, signal).expect("signal redis-server");
    }

    /// Starts it again on the same port and directory.
    #[track_caller]
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    #[track_caller]
    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", self.dir.arg(), "--save", ""])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        self.child = Some(child);
        // Ready once it answers PING (not LOADING).
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut reply = [0u8; 64];
                if stream.write_all(b"PING\r\n").is_ok() {
                    if let Ok(n) = io::Read::read(&mut stream, &mut reply) {
                        if reply[..n].starts_with(b"+PONG") {
                            return;
                        }
                    }
                }
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
