//! The reader thread: `XREAD BLOCK` on the log from the last id it passed on, so after a lost
//! connection it reads on from exactly there (nothing missed, nothing twice). Each batch goes to
//! the loop as one [`Event::Entries`].
//!
//! **A log trimmed past what was read.** The log keeps about `log_max` entries; a node that
//! fell further behind (stopped, cut off) would read on from the oldest entry left, with a hole
//! in its copy of the chat. So each `XREAD` is followed, in the same round trip, by
//! [`keys::LOG_START`] (the first entry left and the log's length): if the log is as long as
//! it is kept (it has been trimmed) and its first entry left comes after the last id read, an
//! entry this node never read may be gone, and the reader sends [`Event::LogLost`] and stops,
//! the entries unapplied. (A log that is shorter was never trimmed: a Redis that restarted
//! without its data starts a new one, which loses nothing of what the nodes read on from. A
//! node that read exactly up to the first entry left is taken for behind too: it is a whole
//! log behind, and would be in a moment.)

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::keys::{self, BATCH_FIELD, FIELD, LOG};
use super::link::{connect, Event, Part, ToLoop};
use super::settings::ClusterConfig;

/// How long one `XREAD` waits for entries in Redis.
pub const BLOCK: Duration = Duration::from_millis(1000);
/// Most entries one `XREAD` returns.
pub const COUNT: usize = 1000;
/// How long the reply to an `XREAD` may take beyond [`BLOCK`] before the connection is taken
/// for lost.
const SLACK: Duration = Duration::from_secs(2);

/// Starts the thread, reading the entries after `last_id`.
pub fn spawn(
    config: ClusterConfig,
    last_id: String,
    to_loop: ToLoop,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("chatd-cluster-reader".into())
        .spawn(move || run(&config, last_id, &to_loop))
}

fn run(config: &ClusterConfig, mut last_id: String, to_loop: &ToLoop) {
    let mut backoff = Backoff::default();
    let mut con: Option<redis::Connection> = None;
    let mut up = true;
    let mut seen = to_loop.outages();
    loop {
        if con.is_some() && to_loop.outages() != seen {
            // Another thread lost Redis: this connection may be as dead; a fresh one is sure.
            con = None;
            up = false;
        }
        let Some(connection) = con.as_mut() else {
            match connect(config, BLOCK + SLACK) {
                Ok(c) => {
                    con = Some(c);
                    backoff.reset();
                    seen = to_loop.outages();
                    if !up {
                        log::info!(
                            "cluster: the reader reached Redis again, reading on after {last_id}"
                        );
                    }
                    up = true;
                    // Said after every connection opened, the first too: an outage another
                    // thread counted before it may be waiting for this thread's word.
                    if !to_loop.send(Event::Link {
                        part: Part::Reader,
                        up,
                    }) {
                        return;
                    }
                }
                Err(e) => {
                    log::debug!("cluster: the reader cannot reach Redis: {e}");
                    if up {
                        up = false;
                        if !to_loop.lost(Part::Reader) {
                            return;
                        }
                    }
                    seen = to_loop.outages();
                    thread::sleep(backoff.next_wait());
                }
            }
            continue;
        };
        let started = Instant::now();
        let read_from = last_id.clone();
        // The log's state is asked right after the read, in the same round trip.
        let reply: redis::RedisResult<(redis::Value, redis::Value)> = redis::pipe()
            .cmd("XREAD")
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("COUNT")
            .arg(COUNT)
            .arg("STREAMS")
            .arg(LOG)
            .arg(&last_id)
            .cmd("EVAL")
            .arg(keys::LOG_START)
            .arg(1)
            .arg(LOG)
            .query(connection);
        match reply {
            Ok((reply, start)) => {
                let read = parse_id(&read_from);
                let gone = gone_after(&start, config.log_max);
                if gone.is_some_and(|gone| read.is_some_and(|read| gone > read)) {
                    log::error!(
                        "cluster: the log was trimmed past what this node read (entries after \
                         {read_from} are gone)"
                    );
                    to_loop.send(Event::LogLost { after: read_from });
                    return;
                }
                let entries = entries(reply, &mut last_id);
                if !entries.is_empty() && !to_loop.send(Event::Entries(entries)) {
                    return;
                }
            }
            Err(e) => {
                log::warn!(
                    "cluster: the reader lost Redis after {:?}: {e}",
                    started.elapsed()
                );
                con = None;
                if up {
                    up = false;
                    if !to_loop.lost(Part::Reader) {
                        return;
                    }
                }
                seen = to_loop.outages();
            }
        }
    }
}

/// From the reply of [`keys::LOG_START`] on a log kept at about `log_max` entries: the id just
/// before its first entry left, if it was trimmed (an entry up to that id may be gone); `None`
/// for a log shorter than that (never trimmed) or empty.
fn gone_after(reply: &redis::Value, log_max: u64) -> Option<(u64, u64)> {
    let redis::Value::Array(items) = reply else {
        return None;
    };
    let [first, length] = items.as_slice() else {
        return None;
    };
    let redis::Value::Int(length) = length else {
        return None;
    };
    if u64::try_from(*length).unwrap_or(0) < log_max {
        return None;
    }
    let (ms, seq) = parse_id(&owned_text(first.clone())?)?;
    Some(match seq {
        0 => (ms.checked_sub(1)?, u64::MAX),
        _ => (ms, seq - 1),
    })
}

/// A stream id `MS-SEQ` as a pair that orders as the ids do.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The ids and values of an `XREAD` reply's entries, in order (a batch's as it is; an entry
/// with neither field is skipped); `last_id` becomes the last id read. The reply
/// is walked as it came, its strings moved out rather than copied (the `redis` crate's typed
/// stream reply builds a map of every entry's fields first: in a burst that was most of the
/// reader thread's time).
fn entries(reply: redis::Value, last_id: &mut String) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    // RESP2 answers with an array of [stream, entries] pairs, RESP3 with a map; nil for none.
    let streams: Vec<redis::Value> = match reply {
        redis::Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                redis::Value::Array(pair) => pair.into_iter().nth(1),
                _ => None,
            })
            .collect(),
        redis::Value::Map(streams) => streams.into_iter().map(|(_, items)| items).collect(),
        _ => Vec::new(),
    };
    for items in streams {
        let redis::Value::Array(items) = items else {
            continue;
        };
        for item in items {
            let redis::Value::Array(item) = item else {
                continue;
            };
            let mut item = item.into_iter();
            let (Some(id), fields) = (item.next().and_then(owned_text), item.next()) else {
                continue;
            };
            last_id.clone_from(&id);
            match fields.and_then(field_value) {
                Some(value) => out.push((id, value)),
                None => log::warn!(
                    "cluster: entry {id} has neither field '{FIELD}' nor '{BATCH_FIELD}'; skipped"
                ),
            }
        }
    }
    out
}

/// The value of the field [`FIELD`] or [`BATCH_FIELD`] in an entry's field list (`[name,
/// value, ...]`): one encoded entry, or a batch's, one after the other.
fn field_value(fields: redis::Value) -> Option<Vec<u8>> {
    let mut fields = match fields {
        redis::Value::Array(fields) => fields.into_iter(),
        _ => return None,
    };
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let name = owned_text(name)?;
        if name == FIELD || name == BATCH_FIELD {
            return match value {
                redis::Value::BulkString(bytes) => Some(bytes),
                _ => None,
            };
        }
    }
    None
}

/// A Redis reply's text, moved out of it, if it is UTF-8 text.
fn owned_text(value: redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        redis::Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn start(first: &str, length: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(first.as_bytes().to_vec()),
            Value::Int(length),
        ])
    }

    #[test]
    fn a_log_trimmed_past_the_last_id_read_is_told_apart_from_one_that_is_not() {
        let trimmed = start("20-0", 100);
        // A node that read the first entry left, or past it, lost nothing; one that read only
        // what is before it may have.
        assert!(gone_after(&trimmed, 100) < parse_id("20-0"));
        assert!(gone_after(&trimmed, 100) > parse_id("19-7"));
        assert_eq!(gone_after(&start("20-5", 100), 100), Some((20, 4)));
        // Shorter than it is kept: never trimmed (a new log, after Redis lost its data).
        assert_eq!(gone_after(&start("20-0", 99), 100), None);
        assert_eq!(gone_after(&Value::Nil, 100), None);
        assert_eq!(gone_after(&start("x", 100), 100), None);
        assert!(parse_id("9-10") > parse_id("9-9"));
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn an_xread_reply_gives_its_entries_in_order_and_the_last_id_read() {
        let entry =
            |id: &str, fields: Vec<Value>| Value::Array(vec![bulk(id), Value::Array(fields)]);
        // Values are bytes, passed on as they are (entries are binary).
        let one = Value::BulkString(vec![1, 0xff, 0]);
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(LOG),
            Value::Array(vec![
                entry("5-0", vec![bulk(FIELD), one]),
                entry("5-1", vec![bulk("other"), bulk("x")]),
                entry(
                    "6-0",
                    vec![bulk("other"), bulk("x"), bulk(FIELD), bulk("e")],
                ),
                entry("6-1", vec![bulk(BATCH_FIELD), bulk("b1b2")]),
            ]),
        ])]);
        let mut last = "0-0".to_string();
        assert_eq!(
            entries(reply, &mut last),
            vec![
                ("5-0".to_string(), vec![1, 0xff, 0]),
                ("6-0".to_string(), b"e".to_vec()),
                ("6-1".to_string(), b"b1b2".to_vec())
            ]
        );
        assert_eq!(last, "6-1");
        // RESP3's map form reads the same; no entries (nil) leaves the last id as it was.
        let map = Value::Map(vec![(
            bulk(LOG),
            Value::Array(vec![entry("7-0", vec![bulk(FIELD), bulk("m")])]),
        )]);
        assert_eq!(
            entries(map, &mut last),
            vec![("7-0".to_string(), b"m".to_vec())]
        );
        assert_eq!(entries(Value::Nil, &mut last), vec![]);
        assert_eq!(last, "7-0");
    }
}
