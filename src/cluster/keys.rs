//! The Redis keys of a cluster and the Lua scripts that change them. A script runs atomically in
//! Redis: a name is claimed (or released) and the entry that says so appended to the log in one
//! step, so no node ever reads an Admit whose lease another node holds.

/// The stream every node appends to and reads, in order.
pub const LOG: &str = "chatd:log";
/// About how many entries the log keeps by default (`XADD ... MAXLEN ~`): a node away for longer
/// than it takes to append these cannot catch up: it cuts its users off and stops (see
/// [`super::reader`]).
pub const LOG_MAXLEN: u64 = 100_000;
/// The cluster's run, for line ids (`ChatConfig::epoch`): set if absent by the first node that
/// starts, read by every node at start; it lives a lease unless a node renews it (with its
/// heartbeat), so a cluster whose nodes were all gone for a lease starts a new run.
pub const EPOCH: &str = "chatd:epoch";
/// The set of the nodes' ids.
pub const NODES: &str = "chatd:nodes";
/// The field of a log entry that holds one encoded entry.
pub const FIELD: &str = "e";
/// The field of a log entry that holds several encoded entries, one after the other: the appends
/// that wait together in the writer go as one stream entry (a burst's lines cost Redis and
/// every reader one stream entry per batch, not one per line).
pub const BATCH_FIELD: &str = "b";

/// The lease key of a user name (`chatd:name:` and the name in lower case); its value is the
/// node that holds it.
pub fn name_key(name: &str) -> String {
    format!("chatd:name:{}", name.to_lowercase())
}

/// The heartbeat key of a node; it lives a lease unless the node renews it.
pub fn node_key(node: &str) -> String {
    format!("chatd:node:{node}")
}

/// The mark of one claim: of `node`'s claiming connection `tag`, in the node's run `run` (the
/// stream id of its `Sync`: connection ids start again with each run). Set by the claim that
/// took the name, so that the same claim sent again (its answer never came) is answered as
/// having taken it, without a second entry.
pub fn claim_key(node: &str, run: &str, tag: u64) -> String {
    format!("chatd:claim:{node}:{run}:{tag}")
}

/// KEYS: the name's lease, the log, the claim's mark ([`claim_key`]). ARGV: the node, the lease
/// in ms, the entry, the log's length. Claims the name for the node if nobody holds it, appends
/// the entry and sets the mark (for a lease); 1 if it did or the mark says this claim did
/// already, 0 if the name is taken.
pub const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
  return 1
end
return 0
";

/// KEYS: the name's lease, the log. ARGV: the node, the entry, the log's length. Frees the
/// name if this node still holds it, and appends the entry either way.
pub const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
return 1
";

/// KEYS: the leases of the node's users. ARGV: the node, the lease in ms, whether a lease that
/// is gone may be taken again (Redis restarted without its data, within a lease). Renews each
/// lease the node holds; returns the keys held by another node (those users must be cut off).
pub const RENEW: &str = r"
local lost = {}
for _, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  elseif (not holder) and ARGV[3] == '1' then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost
";

/// KEYS: the gone node's heartbeat, the set of nodes, the log. ARGV: the node, the entry, the
/// log's length. If the node's heartbeat has expired and it is still in the set, takes it out
/// and appends the entry: of all the nodes that see it gone, exactly one says so.
pub const NODE_GONE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('SREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
  return 1
end
return 0
";

/// KEYS: the log. Where it begins now: `{FIRST_ID, LENGTH}`, or nil when it is empty. (Trimming
/// leaves `max-deleted-entry-id` alone, so the first entry left is what tells.)
pub const LOG_START: &str = r"
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then
  return false
end
return {first[1][1], redis.call('XLEN', KEYS[1])}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_lease_key_whatever_its_case() {
        assert_eq!(name_key("Bob"), name_key("bOB"));
        assert_eq!(name_key("Bob"), "chatd:name:bob");
        assert_eq!(claim_key("a", "17-0", 5), "chatd:claim:a:17-0:5");
        assert_eq!(node_key("n1"), "chatd:node:n1");
    }
}
