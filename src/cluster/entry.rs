//! The log's entries: the core's own serde types in postcard, serde's compact binary form, in
//! the field `e` of a stream entry, or several in the field `b` (see PROTOCOL.md, "The
//! cluster's log").
//!
//! Every entry names the node that appended it and the time it was appended (Unix seconds: the
//! time every node shows on the line), and holds one of: a [`Shared`] change of the chat (its
//! connection ids are the appending node's own), a late node's `sync` request, a node's
//! `snapshot` for a late node, or `node_gone` (a node's heartbeat expired).
//!
//! The entries were JSON once; every node decodes every line of the chat, and in a burst JSON
//! was a fifth of a node's CPU (its decoding alone a sixth). Each encoded entry starts with
//! [`FORMAT`], so that a node meeting entries of another version of chatd says so plainly.

use serde::{Deserialize, Serialize};

use crate::core::cluster::{Shared, Snapshot};

/// The first byte of every encoded entry: the version of this format.
pub const FORMAT: u8 = 1;

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The node that appended it.
    pub node: String,
    /// The entry's number among the node's `Shared` entries since it started (from 1), so that
    /// an entry appended twice (sent again after a reply that never came) is applied once; 0 for
    /// the other entries, which are applied however often they come.
    pub seq: u64,
    /// When, in Unix seconds (what the line shows at every node).
    pub stamp: i64,
    /// What it says.
    pub body: Body,
}

/// What an entry says. The order of the variants is part of the format (postcard numbers
/// them): add new ones at the end, and a new [`FORMAT`] for any other change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// A change of the chat, for every node's core.
    Shared(Shared),
    /// The node just started: every node alive answers with its [`Body::Snapshot`].
    Sync,
    /// A node's share of the chat, as of the late node's `sync`, for that node alone.
    Snapshot {
        /// The late node.
        for_node: String,
        /// The answering node's users (with its connection ids) and every room.
        snapshot: Snapshot,
    },
    /// The node `gone` stopped renewing its heartbeat: its users are gone.
    NodeGone {
        /// The node.
        gone: String,
    },
    /// The cluster's accounts or bans changed (`chatd user`, a registration, a ban): every
    /// node reads them again from Redis.
    Registry,
}

/// Why an entry could not be read.
#[derive(Debug)]
pub enum BadEntry {
    /// The bytes are not an entry of this format.
    Garbled(postcard::Error),
    /// The entry starts with another format's byte (another version of chatd appended it).
    Format(u8),
}

impl std::fmt::Display for BadEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadEntry::Garbled(e) => write!(f, "a log entry that cannot be read: {e}"),
            BadEntry::Format(byte) => write!(
                f,
                "a log entry of format {byte}, where this chatd reads format {FORMAT} (the \
                 nodes of one cluster must run one version of chatd)"
            ),
        }
    }
}

impl std::error::Error for BadEntry {}

/// Room for a chat line's entry, so that encoding one seldom grows its buffer.
const LINE_ENTRY: usize = 160;

/// `value` encoded: [`FORMAT`], then its postcard bytes.
fn encode(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(LINE_ENTRY);
    bytes.push(FORMAT);
    // Serializing these types (strings, numbers, enums, lists) into a Vec cannot fail.
    postcard::to_extend(value, bytes).unwrap_or_default()
}

/// A [`Shared`] entry as it is written, borrowing what it says: the same bytes as the
/// [`Entry`] that holds it (postcard names neither types nor fields, and `Shared` is variant 0
/// of both bodies).
#[derive(Serialize)]
struct SharedEntry<'a> {
    node: &'a str,
    seq: u64,
    stamp: i64,
    body: SharedBody<'a>,
}

/// The first variant of [`Body`], borrowed.
#[derive(Serialize)]
enum SharedBody<'a> {
    Shared(&'a Shared),
}

/// `node`'s entry number `seq` saying `shared` at `stamp`, encoded (without copying `shared`
/// into an [`Entry`] first).
pub fn encode_shared(node: &str, seq: u64, stamp: i64, shared: &Shared) -> Vec<u8> {
    encode(&SharedEntry {
        node,
        seq,
        stamp,
        body: SharedBody::Shared(shared),
    })
}

impl Entry {
    /// The entry encoded: [`FORMAT`], then its postcard bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// The one entry `bytes` hold.
    pub fn decode(bytes: &[u8]) -> Result<Entry, BadEntry> {
        let (entry, rest) = Entry::take(bytes)?;
        if rest.is_empty() {
            Ok(entry)
        } else {
            Err(BadEntry::Garbled(postcard::Error::DeserializeBadEncoding))
        }
    }

    /// The first entry of `bytes` (encoded entries one after the other, as a batch holds
    /// them), and what follows it.
    pub fn take(bytes: &[u8]) -> Result<(Entry, &[u8]), BadEntry> {
        match bytes.split_first() {
            Some((&FORMAT, rest)) => postcard::take_from_bytes(rest).map_err(BadEntry::Garbled),
            Some((&other, _)) => Err(BadEntry::Format(other)),
            None => Err(BadEntry::Garbled(postcard::Error::DeserializeUnexpectedEnd)),
        }
    }
}

/// The entries a stream entry's value holds (one, or a batch's), in order; an entry that cannot
/// be read ends the list with its error (what follows it cannot be found).
pub fn entries(mut bytes: &[u8]) -> impl Iterator<Item = Result<Entry, BadEntry>> + '_ {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        Some(match Entry::take(bytes) {
            Ok((entry, rest)) => {
                bytes = rest;
                Ok(entry)
            }
            Err(e) => {
                bytes = &[];
                Err(e)
            }
        })
    })
}

/// The unix time now, in seconds (an entry's stamp).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// `node`'s entry saying that `gone` is gone, encoded.
pub fn node_gone(node: &str, gone: &str) -> Vec<u8> {
    Entry {
        node: node.to_owned(),
        seq: 0,
        stamp: unix_now(),
        body: Body::NodeGone {
            gone: gone.to_owned(),
        },
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ConnId;
    use crate::proto::msg::{ClientMsg, Command, HostCommand};

    fn entry(body: Body) -> Entry {
        Entry {
            node: "a1".into(),
            seq: 0,
            stamp: 1_700_000_000,
            body,
        }
    }

    #[test]
    fn an_entry_is_the_format_byte_then_the_node_its_number_the_stamp_and_one_body() {
        let left = Entry {
            seq: 300,
            ..entry(Body::Shared(Shared::Left { conn: ConnId(7) }))
        };
        let bytes = left.encode();
        // The format; "a1" (its length, 2, first); 300 as a varint (7 bits a byte, low first);
        // the stamp, 2 x 1,700,000,000 as a varint (zigzag, for a signed number); Shared
        // (variant 0), Left (variant 2), conn 7.
        assert_eq!(
            bytes,
            [
                &[FORMAT, 2, b'a', b'1', 0xAC, 0x02][..],
                &[0x80, 0xC4, 0x9F, 0xD5, 0x0C],
                &[0, 2, 7]
            ]
            .concat()
        );
        assert_eq!(Entry::decode(&bytes).unwrap(), left);
        for body in [
            Body::Sync,
            Body::Registry,
            Body::NodeGone { gone: "b".into() },
        ] {
            let one = entry(body);
            assert_eq!(Entry::decode(&one.encode()).unwrap(), one);
        }
        let gone = Entry::decode(&node_gone("b", "a1")).unwrap();
        assert_eq!(gone.body, Body::NodeGone { gone: "a1".into() });
        let shared = Shared::Left { conn: ConnId(7) };
        assert_eq!(encode_shared("a1", 300, 1_700_000_000, &shared), bytes);
    }

    #[test]
    fn a_batch_is_its_entries_one_after_the_other_read_back_in_order() {
        let said = |text: &str| {
            entry(Body::Shared(Shared::Said {
                conn: ConnId(1 << 32),
                msg: ClientMsg::Say { text: text.into() },
            }))
        };
        let batch = [
            said("one").encode(),
            said("two\nlines").encode(),
            said("").encode(),
        ]
        .concat();
        let read: Vec<Entry> = entries(&batch).map(Result::unwrap).collect();
        assert_eq!(read, vec![said("one"), said("two\nlines"), said("")]);
    }

    #[test]
    fn commands_after_a_variant_that_is_never_shared_keep_their_meaning() {
        // serde numbers a skipped variant when it writes and not when it reads: the variants
        // that are never shared come last, so that none after them reads as another.
        for msg in [
            ClientMsg::Command(Command::Unknown {
                name: "frob".into(),
            }),
            ClientMsg::Command(Command::Dm {
                to: "bob".into(),
                text: "hi".into(),
            }),
        ] {
            let one = entry(Body::Shared(Shared::Said {
                conn: ConnId(3),
                msg,
            }));
            assert_eq!(Entry::decode(&one.encode()).unwrap(), one);
        }
        let host = entry(Body::Shared(Shared::Host(HostCommand::Rooms)));
        assert_eq!(Entry::decode(&host.encode()).unwrap(), host);
    }

    #[test]
    fn a_snapshot_crosses_the_log_whole() {
        let snapshot = entry(Body::Snapshot {
            for_node: "c".into(),
            snapshot: Snapshot::default(),
        });
        assert_eq!(Entry::decode(&snapshot.encode()).unwrap(), snapshot);
    }

    #[test]
    fn what_is_not_an_entry_is_an_error_not_a_panic() {
        let whole = entry(Body::Sync).encode();
        assert!(matches!(Entry::decode(&[2, 0]), Err(BadEntry::Format(2))));
        assert!(Entry::decode(&whole[..whole.len() - 1]).is_err());
        assert!(Entry::decode(&[whole.clone(), vec![0]].concat()).is_err());
        for bytes in [&b""[..], b"{}", &[FORMAT], &[FORMAT, 200, 200, 200]] {
            assert!(Entry::decode(bytes).is_err(), "{bytes:?}");
        }
        // A batch with a bad entry gives what came before it, then the error, then nothing.
        let batch = [whole.clone(), vec![9, 9], whole].concat();
        let read: Vec<bool> = entries(&batch).map(|e| e.is_ok()).collect();
        assert_eq!(read, vec![true, false]);
    }
}
