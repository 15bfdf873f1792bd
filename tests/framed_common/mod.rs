//! Helpers for the framed-mode tests: the real `chatd` and `chat` binaries on loopback port 0,
//! text users on raw sockets, framed users speaking bytes. Every wait has a deadline, and only
//! processes started here are killed.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use chatd::proto::framed::{ClientFrame, ServerFrame, ServerFrameDecoder, MAX_FRAME_CAP};

/// The longest any expected line or frame may take to arrive.
pub const WAIT: Duration = Duration::from_secs(10);

/// Lines from a child's stdout or stderr, read by a thread so waits can time out.
pub struct Lines {
    what: &'static str,
    receiver: Receiver<String>,
    /// Every line taken so far, for failure messages.
    pub seen: Vec<String>,
}

impl Lines {
    pub fn spawn(what: &'static str, source: impl Read + Send + 'static) -> Lines {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(source).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            what,
            receiver,
            seen: Vec::new(),
        }
    }

    /// The next line that `matches`, skipping others; panics after [`WAIT`].
    pub fn expect(&mut self, description: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no line {description} within {WAIT:?}; saw {:#?}",
                    self.what, self.seen
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: closed without a line {description}; saw {:#?}",
                    self.what, self.seen
                ),
            }
        }
    }

    /// The next line containing `needle`.
    pub fn expect_containing(&mut self, needle: &str) -> String {
        self.expect(&format!("containing {needle:?}"), |line| {
            line.contains(needle)
        })
    }
}

/// A `chatd` on a loopback port of its own, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its console output: the room as the host sees it.
    pub console: Lines,
    /// Its own data directory, removed with it.
    data: crate::common::DataDir,
}

impl Server {
    /// Starts `chatd --listen 127.0.0.1:0 --no-console` plus `args`, and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        let data = crate::common::DataDir::new();
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatd"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--no-console",
                "--data-dir",
                data.arg(),
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chatd starts");
        let mut console = Lines::spawn("chatd", child.stdout.take().expect("piped stdout"));
        let line = console.expect("saying where it listens", |l| {
            l.starts_with("chatd listening on ")
        });
        let addr = line["chatd listening on ".len()..]
            .parse()
            .expect("an address");
        Server {
            child,
            addr,
            console,
            data,
        }
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads from `socket` into `buffer` until `done` says so; panics after [`WAIT`]. Returns false
/// if the peer closed first.
fn read_until(
    socket: &mut TcpStream,
    buffer: &mut Vec<u8>,
    mut done: impl FnMut(&mut Vec<u8>) -> bool,
    what: &str,
) -> bool {
    let deadline = Instant::now() + WAIT;
    let mut chunk = [0u8; 4096];
    loop {
        if done(buffer) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{what}: nothing within {WAIT:?}");
        socket.set_read_timeout(Some(left)).expect("read timeout");
        match socket.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return false,
            Err(e) => panic!("{what}: read failed: {e}"),
        }
    }
}

/// A text-mode user on a raw socket, as `nc` would be.
pub struct TextUser {
    socket: TcpStream,
    buffer: Vec<u8>,
    /// Every line taken so far, for failure messages and checks.
    pub seen: Vec<String>,
}

impl TextUser {
    /// Connects without sending anything.
    pub fn connect(server: &Server) -> TextUser {
        TextUser {
            socket: TcpStream::connect(server.addr).expect("connect"),
            buffer: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Connects and joins as `name`.
    pub fn join(server: &Server, name: &str) -> TextUser {
        let mut user = TextUser::connect(server);
        user.expect_line("the prompt", |l| l == "Enter your name:");
        user.send(name);
        user.expect_line("the welcome", |l| l.starts_with("[*] Welcome, "));
        user
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        self.socket
            .write_all(format!("{line}\n").as_bytes())
            .expect("send");
    }

    /// The next line (without CRLF) that `matches`, skipping others.
    pub fn expect_line(&mut self, description: &str, matches: impl Fn(&str) -> bool) -> String {
        let mut found = None;
        let seen = &mut self.seen;
        let open = read_until(
            &mut self.socket,
            &mut self.buffer,
            |buffer| {
                while let Some(lf) = buffer.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=lf).collect();
                    let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                    seen.push(line.clone());
                    if matches(&line) {
                        found = Some(line);
                        return true;
                    }
                }
                false
            },
            description,
        );
        found.unwrap_or_else(|| {
            panic!(
                "text user: no line {description} (open: {open}); saw {:#?}",
                self.seen
            )
        })
    }

    /// The next line containing `needle`.
    pub fn expect_containing(&mut self, needle: &str) -> String {
        self.expect_line(&format!("containing {needle:?}"), |l| l.contains(needle))
    }
}

/// A framed user speaking raw frames, to send what the `chat` client never would.
pub struct FramedUser {
    pub socket: TcpStream,
    decoder: ServerFrameDecoder,
    buffer: Vec<u8>,
}

impl FramedUser {
    /// Connects without sending anything.
    pub fn connect(server: &Server) -> FramedUser {
        FramedUser::connect_to(server.addr)
    }

    /// Connects to a server at `addr` (one started by `tests/common`, say).
    pub fn connect_to(addr: SocketAddr) -> FramedUser {
        FramedUser {
            socket: TcpStream::connect(addr).expect("connect"),
            decoder: ServerFrameDecoder::new(MAX_FRAME_CAP),
            buffer: Vec::new(),
        }
    }

    /// Connects and joins as `name`.
    pub fn join(server: &Server, name: &str) -> FramedUser {
        FramedUser::join_at(server.addr, name)
    }

    /// Connects to `addr` and joins as `name`.
    pub fn join_at(addr: SocketAddr, name: &str) -> FramedUser {
        let mut user = FramedUser::connect_to(addr);
        user.send(&ClientFrame::hello(name));
        user.expect("the welcome", |f| matches!(f, ServerFrame::Welcome { .. }));
        user
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: &ClientFrame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        self.send_raw(&bytes);
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).expect("send");
    }

    /// The next frame that `matches`, skipping others.
    pub fn expect(
        &mut self,
        description: &str,
        matches: impl Fn(&ServerFrame) -> bool,
    ) -> ServerFrame {
        let decoder = &mut self.decoder;
        let mut found = None;
        let mut seen = Vec::new();
        let open = read_until(
            &mut self.socket,
            &mut self.buffer,
            |buffer| loop {
                let step = decoder.decode(buffer);
                buffer.drain(..step.used);
                match step.item {
                    None => return false,
                    Some(Ok(frame)) if matches(&frame) => {
                        found = Some(frame);
                        return true;
                    }
                    Some(item) => seen.push(item),
                }
            },
            description,
        );
        found.unwrap_or_else(|| {
            panic!("framed user: no frame {description} (open: {open}); saw {seen:#?}")
        })
    }

    /// Reads until the server closes the connection, returning the frames it sent before.
    pub fn expect_closed(&mut self) -> Vec<ServerFrame> {
        let decoder = &mut self.decoder;
        let mut frames = Vec::new();
        let open = read_until(
            &mut self.socket,
            &mut self.buffer,
            |buffer| {
                loop {
                    let step = decoder.decode(buffer);
                    buffer.drain(..step.used);
                    match step.item {
                        None => break,
                        Some(item) => frames.push(item.expect("a good frame")),
                    }
                }
                false
            },
            "the close",
        );
        assert!(!open);
        frames
    }

    /// Closes the sending half, as a client cut off mid-frame would.
    pub fn shutdown_write(&self) {
        self.socket.shutdown(Shutdown::Write).expect("shutdown");
    }
}

/// A `chat` client process, killed when dropped if it is still running.
pub struct ChatClient {
    child: Child,
    stdin: Option<ChildStdin>,
    /// What it shows.
    pub stdout: Lines,
    /// Its complaints.
    pub stderr: Lines,
}

impl ChatClient {
    /// Starts `chat` with `args`, stdin piped.
    pub fn start(args: &[&str]) -> ChatClient {
        ChatClient::start_with_env(args, &[])
    }

    /// Starts `chat` with `args` and the environment variables `env` set, stdin piped.
    pub fn start_with_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> ChatClient {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chat starts");
        let stdin = child.stdin.take();
        let stdout = Lines::spawn("chat stdout", child.stdout.take().expect("piped"));
        let stderr = Lines::spawn("chat stderr", child.stderr.take().expect("piped"));
        ChatClient {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Starts `chat --name NAME ADDR` and waits for the welcome.
    pub fn join(server: &Server, name: &str) -> ChatClient {
        let mut chat = ChatClient::start(&["--name", name, &server.addr.to_string()]);
        chat.stdout
            .expect_containing(&format!("[*] Welcome, {name}!"));
        chat
    }

    /// Types one line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("type a line");
        stdin.flush().expect("flush");
    }

    /// Sends it SIGINT, as Ctrl-C would.
    pub fn interrupt(&self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    }

    /// Ends its stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for it to exit; panics after [`WAIT`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chat still running after {WAIT:?}; it showed {:#?}",
                self.stdout.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChatClient {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `line` is a chat line `[HH:MM:SS] REST` with exactly that rest.
pub fn is_chat_line(line: &str, rest: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() == 11 + rest.len()
        && bytes[0] == b'['
        && bytes[1..9].iter().enumerate().all(|(i, b)| {
            if i % 3 == 2 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
        && &line[9..11] == "] "
        && &line[11..] == rest
}
