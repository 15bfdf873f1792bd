//! The reader thread: `XREAD BLOCK` on the log from the last id it passed on, so after a lost
//! connection it reads on from exactly there (nothing missed, nothing twice). Each batch goes to
//! the loop as one [`Event::Entries`].

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use redis::streams::StreamReadReply;

use super::backoff::Backoff;
use super::keys::{FIELD, LOG};
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
                        up = true;
                        if !to_loop.send(Event::Link {
                            part: Part::Reader,
                            up,
                        }) {
                            return;
                        }
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
        let reply: redis::RedisResult<Option<StreamReadReply>> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("COUNT")
            .arg(COUNT)
            .arg("STREAMS")
            .arg(LOG)
            .arg(&last_id)
            .query(connection);
        match reply {
            Ok(reply) => {
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

/// The ids and JSON of a reply's entries, in order (an entry without the field is skipped);
/// `last_id` becomes the last id read.
fn entries(reply: Option<StreamReadReply>, last_id: &mut String) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in reply.into_iter().flat_map(|reply| reply.keys) {
        for mut entry in key.ids {
            last_id.clone_from(&entry.id);
            let text = entry
                .map
                .remove(FIELD)
                .and_then(|value| redis::from_redis_value::<String>(value).ok());
            match text {
                Some(text) => out.push((entry.id, text)),
                None => log::warn!(
                    "cluster: entry {} has no '{FIELD}' field; skipped",
                    entry.id
                ),
            }
        }
    }
    out
}
