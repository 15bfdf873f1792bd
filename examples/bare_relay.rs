//! The baseline chatd is measured against: a bare mio relay that forwards raw lines.
//!
//! One thread, one `Poll`, edge-triggered. Whatever whole lines a client sends are copied as they
//! are to every other client's output buffer; there are no names, no formatting, no commands, no
//! per-line work at all beyond finding the last line end of each read. Output is written after
//! the whole batch of events, like chatd's. It is what "forwarding lines" costs on this machine,
//! so `chatd-load` can put chatd's CPU per delivery next to it with the same settings:
//!
//! ```sh
//! cargo run --release --example bare_relay -- --listen 127.0.0.1:3002
//! chatd-load burst --addr 127.0.0.1:3002 --welcome '' --label 'bare relay' --server-pid PID
//! ```
//!
//! A client whose output grows past `--max-outbuf` is dropped, as chatd drops a slow consumer.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX - 1);
/// Bytes read from a socket per call.
const READ_CHUNK: usize = 64 * 1024;
/// The longest line kept while waiting for its end; a longer one is dropped.
const MAX_PARTIAL: usize = 64 * 1024;

struct Peer {
    socket: TcpStream,
    /// Bytes to write, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// In the list of peers to write after this batch.
    dirty: bool,
    closing: bool,
}

struct Relay {
    poll: Poll,
    listener: TcpListener,
    peers: Slab<Peer>,
    read_buf: Vec<u8>,
    dirty: Vec<usize>,
    closing: Vec<usize>,
    max_outbuf: usize,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 3002));
    let mut max_outbuf: usize = 64 << 20;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value.parse().map_err(|e| format!("--listen: {e}"))?,
            "--max-outbuf" => {
                max_outbuf = value.parse().map_err(|e| format!("--max-outbuf: {e}"))?
            }
            _ => {
                return Err(format!(
                    "unknown flag {flag}; use --listen ADDR --max-outbuf BYTES"
                ))
            }
        }
    }
    let poll = Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?;
    let mut listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| format!("cannot register the listener: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!("bare_relay listening on {local}");
    let mut relay = Relay {
        poll,
        listener,
        peers: Slab::new(),
        read_buf: vec![0; READ_CHUNK],
        dirty: Vec::new(),
        closing: Vec::new(),
        max_outbuf,
    };
    relay.serve().map_err(|e| format!("poll failed: {e}"))
}

impl Relay {
    fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            if let Err(e) = self.poll.poll(&mut events, None) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    Token(key) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read(key);
                        }
                        if event.is_writable() {
                            self.mark_dirty(key);
                        }
                    }
                }
            }
            self.flush();
            for key in std::mem::take(&mut self.closing) {
                if self.peers.contains(key) {
                    let mut peer = self.peers.remove(key);
                    let _ = self.poll.registry().deregister(&mut peer.socket);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut socket, _)) => {
                    let _ = socket.set_nodelay(true);
                    let entry = self.peers.vacant_entry();
                    let registered = self.poll.registry().register(
                        &mut socket,
                        Token(entry.key()),
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    if registered.is_ok() {
                        entry.insert(Peer {
                            socket,
                            out: Vec::new(),
                            written: 0,
                            partial: Vec::new(),
                            dirty: false,
                            closing: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("bare_relay: accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn read(&mut self, key: usize) {
        let mut buf = std::mem::take(&mut self.read_buf);
        while let Some(peer) = self.peers.get_mut(key).filter(|p| !p.closing) {
            match peer.socket.read(&mut buf) {
                Ok(0) => {
                    self.close(key);
                    break;
                }
                Ok(n) => {
                    let mut partial = std::mem::take(&mut peer.partial);
                    take_lines(&mut partial, &buf[..n], |lines| self.forward(key, lines));
                    if let Some(peer) = self.peers.get_mut(key) {
                        peer.partial = if partial.is_empty() {
                            Vec::new()
                        } else {
                            partial
                        };
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(key);
                    break;
                }
            }
        }
        self.read_buf = buf;
    }

    /// Appends `bytes` to every other peer's output.
    fn forward(&mut self, from: usize, bytes: &[u8]) {
        let mut over = Vec::new();
        for (key, peer) in self.peers.iter_mut() {
            if key == from || peer.closing {
                continue;
            }
            if peer.out.len() - peer.written + bytes.len() > self.max_outbuf {
                over.push(key);
                continue;
            }
            peer.out.extend_from_slice(bytes);
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(key);
            }
        }
        for key in over {
            eprintln!("bare_relay: client {key} is a slow consumer; dropped");
            self.close(key);
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(peer) = self.peers.get_mut(key) {
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    fn flush(&mut self) {
        for key in std::mem::take(&mut self.dirty) {
            let Some(peer) = self.peers.get_mut(key) else {
                continue;
            };
            peer.dirty = false;
            if peer.closing {
                continue;
            }
            while peer.written < peer.out.len() {
                match peer.socket.write(&peer.out[peer.written..]) {
                    Ok(n) if n > 0 => peer.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => {
                        peer.closing = true;
                        self.closing.push(key);
                        break;
                    }
                }
            }
            if peer.written == peer.out.len() {
                // Give the buffer back: an idle connection holds no output memory.
                peer.out = Vec::new();
                peer.written = 0;
            } else if peer.written > peer.out.len() / 2 {
                // Reclaim the written half so a reader that keeps up never grows the buffer.
                peer.out.drain(..peer.written);
                peer.written = 0;
            }
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(peer) = self.peers.get_mut(key) {
            if !peer.closing {
                peer.closing = true;
                self.closing.push(key);
            }
        }
    }
}

/// Hands `forward` the whole lines `chunk` completes, after the unfinished one in `partial`, in
/// one slice (copied only if a line straddles reads); keeps the unfinished rest in `partial`. A
/// partial line past `MAX_PARTIAL` bytes is dropped.
fn take_lines(partial: &mut Vec<u8>, chunk: &[u8], forward: impl FnOnce(&[u8])) {
    let Some(last_lf) = chunk.iter().rposition(|&b| b == b'\n') else {
        partial.extend_from_slice(chunk);
        if partial.len() > MAX_PARTIAL {
            partial.clear();
        }
        return;
    };
    if partial.is_empty() {
        forward(&chunk[..=last_lf]);
    } else {
        partial.extend_from_slice(&chunk[..=last_lf]);
        forward(partial);
        partial.clear();
    }
    partial.extend_from_slice(&chunk[last_lf + 1..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(partial: &mut Vec<u8>, chunk: &[u8]) -> Option<Vec<u8>> {
        let mut forwarded = None;
        take_lines(partial, chunk, |lines| forwarded = Some(lines.to_vec()));
        forwarded
    }

    #[test]
    fn only_whole_lines_are_forwarded_and_the_rest_waits() {
        let mut partial = Vec::new();
        assert_eq!(feed(&mut partial, b"he"), None);
        assert_eq!(feed(&mut partial, b"llo\nwor"), Some(b"hello\n".to_vec()));
        assert_eq!(
            feed(&mut partial, b"ld\r\na\nb\n"),
            Some(b"world\r\na\nb\n".to_vec())
        );
        assert!(partial.is_empty());
        assert_eq!(feed(&mut partial, b"c\nd"), Some(b"c\n".to_vec()));
        assert_eq!(partial, b"d");
    }

    #[test]
    fn an_endless_line_is_dropped() {
        let mut partial = Vec::new();
        for _ in 0..3 {
            assert_eq!(feed(&mut partial, &[b'x'; MAX_PARTIAL / 2 + 1]), None);
        }
        assert!(partial.len() <= MAX_PARTIAL);
    }
}
