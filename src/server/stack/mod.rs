//! A connection's layers between the socket and its codec, each a plain struct with no socket and
//! no clock: `[TLS] -> sniff -> one wire mode`, where the web mode is `HTTP -> WebSocket -> JSON`
//! ([`http`] answers the request head and upgrades, [`ws`] reads the frames). The shell reads bytes and hands them to
//! [`Transport::receive`], which gives back plaintext; the sniffer ([`sniff`]) tells the wire mode
//! from the first plaintext bytes; the mode's codec (in `proto`) does the rest. Output goes the
//! other way: the shell queues each message's shared plaintext bytes, and [`Transport::write`]
//! moves them to the socket, through TLS where there is TLS.

pub mod http;
pub mod sniff;
pub mod tls;
pub mod ws;

use std::io::{self, Write};
use std::sync::Arc;

use rustls::ServerConfig;

use super::outqueue::OutQueue;
use tls::{Tls, TlsFailure, TlsReceived};

/// The outermost layer: whether the connection speaks TLS, once its first byte has said.
#[derive(Debug)]
pub enum Transport {
    /// No byte received yet.
    Unknown,
    /// Plain TCP: bytes are plaintext.
    Plain,
    /// TLS (boxed: a session is a few hundred bytes, and most connections on a LAN are plain).
    Tls(Box<Tls>),
}

/// Why the transport cannot go on.
#[derive(Debug)]
pub enum TransportError {
    /// A TLS ClientHello came to a server without a certificate.
    TlsNotEnabled,
    /// The TLS layer failed (bad records, a failed handshake, an alert).
    Tls(TlsFailure),
}

impl Transport {
    /// Takes bytes read from the socket and appends their plaintext to `plain`. The first byte
    /// decides the transport: 0x16 starts a TLS handshake, anything else is plain.
    pub fn receive(
        &mut self,
        bytes: &[u8],
        tls_config: Option<&Arc<ServerConfig>>,
        plain: &mut Vec<u8>,
    ) -> Result<TlsReceived, TransportError> {
        if let Transport::Unknown = self {
            match bytes.first() {
                None => return Ok(TlsReceived::default()),
                Some(&first)
                    if sniff::sniff(&[first]) == sniff::Verdict::Is(sniff::Sniffed::Tls) =>
                {
                    let config = tls_config.ok_or(TransportError::TlsNotEnabled)?;
                    *self =
                        Transport::Tls(Box::new(Tls::new(config).map_err(TransportError::Tls)?));
                }
                Some(_) => *self = Transport::Plain,
            }
        }
        match self {
            Transport::Unknown => Ok(TlsReceived::default()),
            Transport::Plain => {
                plain.extend_from_slice(bytes);
                Ok(TlsReceived::default())
            }
            Transport::Tls(tls) => tls.receive(bytes, plain).map_err(TransportError::Tls),
        }
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Whether a TLS handshake has begun and not finished.
    pub fn is_handshaking(&self) -> bool {
        matches!(self, Transport::Tls(tls) if tls.is_handshaking())
    }

    /// Whether the layer itself has bytes for the socket (a handshake message, an alert).
    pub fn wants_write(&self) -> bool {
        matches!(self, Transport::Tls(tls) if tls.wants_write())
    }

    /// Writes what `out` holds to `socket`, through TLS where there is TLS.
    pub fn write(&mut self, out: &mut OutQueue, socket: &mut impl Write) -> io::Result<()> {
        match self {
            Transport::Tls(tls) => tls.write(out, socket),
            Transport::Unknown | Transport::Plain => out.write_to(socket).map(|_| ()),
        }
    }

    /// Ends a TLS stream properly before the socket closes.
    pub fn close_notify(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.close_notify();
        }
    }
}
