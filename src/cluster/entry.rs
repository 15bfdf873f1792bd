//! The log's entries: one JSON object in the field `e` of each stream entry (see PROTOCOL.md,
//! "The cluster's log").
//!
//! Every entry names the node that appended it and the time it was appended (Unix seconds: the
//! time every node shows on the line), and holds one of: a [`Shared`] change of the chat (its
//! connection ids are the appending node's own), a late node's `sync` request, a node's
//! `snapshot` for a late node, or `node_gone` (a node's heartbeat expired).

use serde::{Deserialize, Serialize};

use crate::core::cluster::{Shared, Snapshot};

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// The node that appended it.
    pub node: String,
    /// When, in Unix seconds (what the line shows at every node).
    pub stamp: i64,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
}

/// What an entry says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// A change of the chat, for every node's core.
    Shared(Shared),
    /// The node just started: every node alive answers with its [`Body::Snapshot`].
    Sync {},
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
    Registry {},
}

/// An entry as read: the body's key is one of several optional fields, since `flatten` (as
/// [`Entry`] is written) would make serde buffer every entry into a tree of its own before
/// reading it (in a `perf record` of a node in a burst, serde's `ContentVisitor` was the loop
/// thread's costliest function after the allocator; it is gone from the profile now).
#[derive(Deserialize)]
struct Read {
    node: String,
    stamp: i64,
    shared: Option<Shared>,
    sync: Option<Empty>,
    snapshot: Option<SnapshotBody>,
    node_gone: Option<GoneBody>,
    registry: Option<Empty>,
}

/// A body with nothing in it (`{}`).
#[derive(Deserialize)]
struct Empty {}

/// The `snapshot` body as read.
#[derive(Deserialize)]
struct SnapshotBody {
    for_node: String,
    snapshot: Snapshot,
}

/// The `node_gone` body as read.
#[derive(Deserialize)]
struct GoneBody {
    gone: String,
}

/// Why an entry could not be read.
#[derive(Debug)]
pub struct BadEntry(pub serde_json::Error);

impl std::fmt::Display for BadEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a log entry that cannot be read: {}", self.0)
    }
}

impl std::error::Error for BadEntry {}

impl Entry {
    /// The entry as JSON.
    pub fn encode(&self) -> String {
        // Serializing these types (strings, numbers, enums) cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The entry `text` holds.
    pub fn decode(text: &str) -> Result<Entry, BadEntry> {
        let read: Read = serde_json::from_str(text).map_err(BadEntry)?;
        let bodies = [
            read.shared.map(Body::Shared),
            read.sync.map(|Empty {}| Body::Sync {}),
            read.snapshot
                .map(|SnapshotBody { for_node, snapshot }| Body::Snapshot { for_node, snapshot }),
            read.node_gone
                .map(|GoneBody { gone }| Body::NodeGone { gone }),
            read.registry.map(|Empty {}| Body::Registry {}),
        ];
        let mut bodies = bodies.into_iter().flatten();
        match (bodies.next(), bodies.next()) {
            (Some(body), None) => Ok(Entry {
                node: read.node,
                stamp: read.stamp,
                body,
            }),
            (None, _) => Err(BadEntry(serde::de::Error::custom("an entry with no body"))),
            (Some(_), Some(_)) => Err(BadEntry(serde::de::Error::custom(
                "an entry with more than one body",
            ))),
        }
    }
}

/// The unix time now, in seconds (an entry's stamp).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// The JSON of `node`'s entry saying that `gone` is gone.
pub fn node_gone(node: &str, gone: &str) -> String {
    Entry {
        node: node.to_owned(),
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

    #[test]
    fn entries_are_one_json_object_with_the_node_the_stamp_and_one_body() {
        let left = Entry {
            node: "a1".into(),
            stamp: 1_700_000_000,
            body: Body::Shared(Shared::Left { conn: ConnId(7) }),
        };
        let text = left.encode();
        assert_eq!(
            text,
            r#"{"node":"a1","stamp":1700000000,"shared":{"Left":{"conn":7}}}"#
        );
        assert_eq!(Entry::decode(&text).unwrap(), left);
        let sync = Entry {
            node: "b".into(),
            stamp: 1,
            body: Body::Sync {},
        };
        assert_eq!(sync.encode(), r#"{"node":"b","stamp":1,"sync":{}}"#);
        assert_eq!(Entry::decode(&sync.encode()).unwrap(), sync);
        let gone = Entry::decode(&node_gone("b", "a1")).unwrap();
        assert_eq!(gone.body, Body::NodeGone { gone: "a1".into() });
    }

    #[test]
    fn an_entry_with_no_body_or_two_is_refused_and_unknown_keys_are_let_be() {
        assert!(Entry::decode(r#"{"node":"a","stamp":1}"#).is_err());
        assert!(Entry::decode(r#"{"node":"a","stamp":1,"sync":{},"registry":{}}"#).is_err());
        let later = Entry::decode(r#"{"node":"a","stamp":1,"registry":{},"hint":2}"#).unwrap();
        assert_eq!(later.body, Body::Registry {});
    }

    #[test]
    fn a_snapshot_crosses_the_log_whole() {
        let snapshot = Entry {
            node: "b".into(),
            stamp: 2,
            body: Body::Snapshot {
                for_node: "c".into(),
                snapshot: Snapshot::default(),
            },
        };
        assert_eq!(Entry::decode(&snapshot.encode()).unwrap(), snapshot);
    }

    #[test]
    fn what_is_not_an_entry_is_an_error_not_a_panic() {
        for text in [
            "",
            "{}",
            "null",
            r#"{"node":"a","stamp":1}"#,
            r#"{"node":"a","stamp":"x","sync":{}}"#,
        ] {
            assert!(Entry::decode(text).is_err(), "{text}");
        }
    }
}
