//! Two or three `Chat`s in cluster mode, wired through an in-memory ordered log as the shell and
//! Redis wire them: each node maps another node's conn to a local ghost id, appends what its
//! core publishes to the log (with a lease per name, which a test may turn off to let two
//! Admits of a name reach the log), applies every entry in the log's order, and drops what is
//! addressed to ghosts.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use super::*;
use crate::accounts::model::Registry;
use crate::core::{ChatConfig, Input, Now};
use crate::proto::msg::{Moderation, Stamp};

/// A user anywhere in the cluster: (node, conn id on that node). The console of a node is
/// `(node, CONSOLE)`.
type User = (usize, u64);

const CONSOLE: u64 = u64::MAX;

/// Ghost ids start here, far from the test's own conn ids.
const GHOSTS: u64 = 1 << 40;

struct Node {
    chat: Chat,
    /// (origin node, origin conn) -> ghost id here, and back.
    ghosts: HashMap<User, ConnId>,
    origin: HashMap<ConnId, User>,
    /// Local connections still open.
    open: BTreeSet<u64>,
    /// How many entries of the log this node has applied.
    applied: usize,
    /// What each local connection (and the console) was sent, rendered as text mode does.
    got: BTreeMap<u64, Vec<String>>,
    /// What this node's core sent while applying entries, to everyone (ghosts too, by
    /// cluster-wide user), as text-mode bytes and the message itself (line ids and stamps
    /// included): the same at every node.
    replica: Vec<(User, Vec<u8>)>,
}

impl Node {
    fn new(now: &Now) -> Node {
        Node::with_config(now, ChatConfig::default())
    }

    fn with_config(now: &Now, config: ChatConfig) -> Node {
        let config = ChatConfig {
            cluster: true,
            ..config
        };
        Node {
            chat: Chat::new(config, Registry::default(), now.instant),
            ghosts: HashMap::new(),
            origin: HashMap::new(),
            open: BTreeSet::new(),
            applied: 0,
            got: BTreeMap::new(),
            replica: Vec::new(),
        }
    }

    /// The id here of `user`, made a ghost the first time another node's user is seen.
    fn local(&mut self, me: usize, (node, conn): User) -> ConnId {
        if node == me {
            return ConnId(conn);
        }
        let next = ConnId(GHOSTS + self.ghosts.len() as u64);
        let id = *self.ghosts.entry((node, conn)).or_insert(next);
        self.origin.insert(id, (node, conn));
        id
    }

    /// The cluster-wide user of local id `conn`.
    fn global(&self, me: usize, conn: ConnId) -> User {
        self.origin.get(&conn).copied().unwrap_or((me, conn.0))
    }
}

fn render(msg: &ServerMsg) -> Vec<u8> {
    let mut bytes = Vec::new();
    crate::proto::text::encode(msg, b"\n", &mut bytes);
    bytes
}

/// Maps the conn ids of an entry with `map`.
fn map_ids(shared: Shared, mut map: impl FnMut(ConnId) -> ConnId) -> Shared {
    match shared {
        Shared::Admit {
            conn,
            name,
            role,
            registered,
        } => Shared::Admit {
            conn: map(conn),
            name,
            role,
            registered,
        },
        Shared::Said { conn, msg } => Shared::Said {
            conn: map(conn),
            msg,
        },
        Shared::Left { conn } => Shared::Left { conn: map(conn) },
        Shared::Host(command) => Shared::Host(command),
    }
}

struct Cluster {
    nodes: Vec<Node>,
    /// The log: origin node and the entry in the origin's ids.
    log: Vec<(usize, Shared)>,
    now: Now,
    /// Lower-cased name -> the user whose node holds its lease (`None`: no leases, so two Admits
    /// of one name may both reach the log).
    leases: Option<HashMap<String, User>>,
    /// Whether the log cannot be reached: Admits and lines are refused, Lefts and console
    /// commands kept to send later.
    degraded: bool,
    kept: Vec<(usize, Shared)>,
    queue: VecDeque<(usize, Input, bool)>,
}

impl Cluster {
    fn new(nodes: usize) -> Cluster {
        Cluster::with_config(nodes, ChatConfig::default())
    }

    fn with_config(nodes: usize, config: ChatConfig) -> Cluster {
        let now = Now {
            instant: Instant::now(),
            stamp: Stamp::new(1_700_000_000, 12, 34, 56),
        };
        Cluster {
            nodes: (0..nodes)
                .map(|_| Node::with_config(&now, config.clone()))
                .collect(),
            log: Vec::new(),
            now,
            leases: Some(HashMap::new()),
            degraded: false,
            kept: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    /// Feeds `input` to node `k` and carries out what follows (publishing, refusals, closes),
    /// but applies nothing of the log: see [`Cluster::settle`].
    fn feed(&mut self, k: usize, input: Input) {
        self.queue.push_back((k, input, false));
        self.run();
    }

    fn run(&mut self) {
        while let Some((k, input, applying)) = self.queue.pop_front() {
            let mut out = Outbox::new();
            let now = self.now;
            self.nodes[k].chat.handle(&now, input, &mut out);
            for action in out.drain() {
                self.act(k, action, applying);
            }
        }
    }

    fn act(&mut self, k: usize, action: Action, applying: bool) {
        let node = &mut self.nodes[k];
        match action {
            Action::Deliver { to, msg } => {
                let chat = &node.chat;
                let mut to_console = false;
                let recipients: Vec<ConnId> = match to {
                    Recipients::One(conn) => vec![conn],
                    Recipients::Console => {
                        to_console = true;
                        vec![]
                    }
                    Recipients::Room { except, console } => {
                        to_console = console;
                        let mut all: Vec<ConnId> = chat.members().collect();
                        all.sort();
                        all.retain(|&c| Some(c) != except);
                        all
                    }
                    Recipients::InRoom {
                        room,
                        except,
                        console,
                    } => {
                        to_console = console;
                        let mut all: Vec<ConnId> = chat.room_members(room).collect();
                        all.retain(|&c| Some(c) != except);
                        all
                    }
                    Recipients::Everyone => {
                        let mut all: BTreeSet<ConnId> = chat.members().collect();
                        all.extend(node.open.iter().map(|&c| ConnId(c)));
                        all.into_iter().collect()
                    }
                };
                let text_bytes = render(&msg);
                let text = String::from_utf8_lossy(&text_bytes).trim_end().to_owned();
                let mut bytes = format!("{msg:?}\n").into_bytes();
                bytes.extend_from_slice(&text_bytes);
                for conn in recipients {
                    // What a connection is told before it is admitted (a refused claim) is
                    // this node's alone.
                    if applying && chat.replica.admitted.contains(&conn) {
                        let user = node.global(k, conn);
                        node.replica.push((user, bytes.clone()));
                    }
                    // What is addressed to a ghost is dropped: its own node delivers it.
                    if !node.origin.contains_key(&conn) && node.open.contains(&conn.0) {
                        node.got.entry(conn.0).or_default().push(text.clone());
                    }
                }
                if to_console {
                    if applying {
                        node.replica.push(((k, CONSOLE), bytes.clone()));
                    }
                    node.got.entry(CONSOLE).or_default().push(text);
                }
            }
            Action::Close { conn, .. } => {
                // The shell closes it, then reports it gone.
                let was_open = node.open.remove(&conn.0);
                if was_open && !node.origin.contains_key(&conn) {
                    self.queue
                        .push_back((k, Input::Disconnected { conn }, false));
                }
            }
            Action::Publish(shared) => self.publish(k, shared),
            _ => {}
        }
    }

    /// What the shell and Redis do with a Publish of node `k`.
    fn publish(&mut self, k: usize, shared: Shared) {
        if self.degraded {
            match shared {
                Shared::Left { .. } | Shared::Host(_) => self.kept.push((k, shared)),
                _ => {
                    let why = Unshared::Degraded;
                    self.queue
                        .push_back((k, Input::Unshared { shared, why }, false));
                }
            }
            return;
        }
        if let Some(leases) = &mut self.leases {
            match &shared {
                Shared::Admit { conn, name, .. } => {
                    let holder = *leases.entry(name.to_lowercase()).or_insert((k, conn.0));
                    if holder != (k, conn.0) {
                        let why = Unshared::NameTaken;
                        self.queue
                            .push_back((k, Input::Unshared { shared, why }, false));
                        return;
                    }
                }
                Shared::Left { conn } => leases.retain(|_, holder| *holder != (k, conn.0)),
                _ => {}
            }
        }
        self.log.push((k, shared));
    }

    /// Applies the log at every node until nothing more is published.
    fn settle(&mut self) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.settle_at(&all);
    }

    /// Applies the log at the nodes `at` only (the others lag) until nothing more is published.
    fn settle_at(&mut self, at: &[usize]) {
        loop {
            let mut progress = false;
            for &k in at {
                while self.nodes[k].applied < self.log.len() {
                    let (origin, entry) = self.log[self.nodes[k].applied].clone();
                    self.nodes[k].applied += 1;
                    let node = &mut self.nodes[k];
                    let entry = map_ids(entry, |conn| node.local(k, (origin, conn.0)));
                    self.queue.push_back((k, Input::Applied(entry), true));
                    self.run();
                    progress = true;
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Gives every node the same accounts: `root`, an admin (whose password check the tests
    /// answer themselves).
    fn give_every_node_the_admin_root(&mut self) {
        use crate::accounts::model::{Account, Change};
        let mut registry = Registry::default();
        registry.apply(&Change::PutAccount(Account {
            name: "root".into(),
            role: Role::Admin,
            password_hash: "$argon2id$x".into(),
        }));
        for node in &mut self.nodes {
            node.chat.replace_registry(registry.clone());
        }
    }

    fn connect(&mut self, k: usize, id: u64) {
        self.nodes[k].open.insert(id);
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        let conn = ConnId(id);
        self.feed(
            k,
            Input::Connected {
                conn,
                peer,
                secure: false,
            },
        );
    }

    fn line(&mut self, k: usize, id: u64, line: &str) {
        let msg = crate::proto::text::parse_line(line);
        self.feed(
            k,
            Input::Message {
                conn: ConnId(id),
                msg,
            },
        );
    }

    /// Connects `id` at node `k` and joins it as `name`, through the log.
    fn join(&mut self, k: usize, id: u64, name: &str) {
        self.connect(k, id);
        self.line(k, id, name);
        self.settle();
        let welcome = format!("[*] Welcome, {name}!");
        assert!(
            self.got(k, id).iter().any(|l| l.starts_with(&welcome)),
            "{name} could not join: {:?}",
            self.got(k, id)
        );
        self.take(k, id);
    }

    fn host(&mut self, k: usize, command: HostCommand) {
        self.feed(k, Input::Host(command));
    }

    fn disconnect(&mut self, k: usize, id: u64) {
        self.nodes[k].open.remove(&id);
        self.feed(k, Input::Disconnected { conn: ConnId(id) });
    }

    /// What local connection `id` of node `k` has been sent so far, as text-mode lines.
    fn got(&self, k: usize, id: u64) -> Vec<String> {
        self.nodes[k].got.get(&id).cloned().unwrap_or_default()
    }

    /// The same, forgotten once read.
    fn take(&mut self, k: usize, id: u64) -> Vec<String> {
        self.nodes[k].got.remove(&id).unwrap_or_default()
    }

    /// The names online as node `k` knows them, sorted ignoring case.
    fn online(&self, k: usize) -> Vec<String> {
        let chat = &self.nodes[k].chat;
        chat.sessions
            .entries()
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    /// Asserts that every node computed the same deliveries from the log, byte for byte and in
    /// the same order, for every user (and for its own console).
    fn assert_same_everywhere(&self) {
        self.assert_same_everywhere_but(None);
    }

    /// The same, but for what `except` was told by its own node alone (a cut-off).
    fn assert_same_everywhere_but(&self, except: Option<User>) {
        let per_user = |me: usize| -> BTreeMap<User, Vec<Vec<u8>>> {
            let mut users: BTreeMap<User, Vec<Vec<u8>>> = BTreeMap::new();
            for ((node, conn), bytes) in &self.nodes[me].replica {
                if Some((*node, *conn)) == except {
                    continue;
                }
                let user = if *conn == CONSOLE && *node == me {
                    (usize::MAX, CONSOLE)
                } else {
                    (*node, *conn)
                };
                users.entry(user).or_default().push(bytes.clone());
            }
            users
        };
        let first = per_user(0);
        assert!(first.len() > 1, "{first:?}");
        for k in 1..self.nodes.len() {
            assert_eq!(per_user(k), first, "node {k} and node 0");
        }
    }
}

fn chat_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains(" > "))
        .cloned()
        .collect()
}

#[test]
fn room_lines_from_concurrent_senders_on_both_nodes_arrive_in_one_order_everywhere() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.join(0, 2, "carol");
    c.join(1, 2, "dave");
    for n in 1..=3 {
        // Published at both nodes before either applies anything.
        c.line(1, 1, &format!("bob {n}"));
        c.line(0, 1, &format!("alice {n}"));
    }
    assert_eq!(
        chat_lines(&c.got(0, 2)),
        Vec::<String>::new(),
        "not before the log"
    );
    c.settle();
    let order: Vec<String> = ["bob 1", "alice 1", "bob 2", "alice 2", "bob 3", "alice 3"]
        .iter()
        .map(|text| {
            let from = text.split(' ').next().unwrap_or_default();
            format!("[12:34:56] {from} > {text}")
        })
        .collect();
    assert_eq!(chat_lines(&c.got(0, 2)), order, "carol on node 0");
    assert_eq!(chat_lines(&c.got(1, 2)), order, "dave on node 1");
    let not_own = |me: &str| -> Vec<String> {
        order
            .iter()
            .filter(|l| !l.contains(&format!("{me} >")))
            .cloned()
            .collect()
    };
    assert_eq!(chat_lines(&c.got(0, 1)), not_own("alice"));
    assert_eq!(chat_lines(&c.got(1, 1)), not_own("bob"));
    c.assert_same_everywhere();
}

#[test]
fn a_direct_message_crosses_nodes_to_its_recipient_only() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.join(1, 2, "carol");
    c.take(0, 1);
    c.take(1, 1);
    c.line(0, 1, "/dm BOB psst");
    c.settle();
    assert_eq!(c.take(1, 1), vec!["[12:34:56] [dm] alice > psst"]);
    assert_eq!(c.take(1, 2), Vec::<String>::new());
    c.line(1, 1, "/dm alice hi back");
    c.settle();
    assert_eq!(c.take(0, 1), vec!["[12:34:56] [dm] bob > hi back"]);
    assert_eq!(c.got(1, 2), Vec::<String>::new());
}

#[test]
fn a_name_race_with_case_variants_has_one_winner_by_the_lease() {
    let mut c = Cluster::new(2);
    c.connect(0, 1);
    c.connect(1, 1);
    c.take(0, 1);
    c.take(1, 1);
    c.line(0, 1, "Alice");
    c.line(1, 1, "aLICE");
    // Node 1's claim found the lease held: refused at once, asked again.
    assert_eq!(
        c.take(1, 1),
        vec![
            "[!] name taken: someone online already uses it",
            "Enter your name:"
        ]
    );
    c.settle();
    assert!(c.take(0, 1)[0].starts_with("[*] Welcome, Alice!"));
    assert_eq!(c.online(0), vec!["Alice"]);
    assert_eq!(c.online(1), vec!["Alice"]);
    c.line(1, 1, "bob");
    c.settle();
    assert_eq!(c.online(1), vec!["Alice", "bob"]);
}

#[test]
fn two_admits_of_one_name_in_the_log_the_first_wins_and_the_second_is_refused_at_its_origin() {
    for first in [0, 1] {
        let mut c = Cluster::new(2);
        c.leases = None;
        c.connect(0, 1);
        c.connect(1, 1);
        c.take(0, 1);
        c.take(1, 1);
        let second = 1 - first;
        c.line(first, 1, "Alice");
        c.line(second, 1, "aLICE");
        c.settle();
        assert!(
            c.take(first, 1)[0].starts_with("[*] Welcome, Alice!"),
            "the first Admit in the log wins"
        );
        assert_eq!(
            c.take(second, 1),
            vec![
                "[!] name taken: someone online already uses it",
                "Enter your name:"
            ]
        );
        for k in 0..2 {
            assert_eq!(c.online(k), vec!["Alice"], "node {k}");
        }
        // The loser is asked again and may take another name; the winner stays.
        c.line(second, 1, "bob");
        c.settle();
        for k in 0..2 {
            assert_eq!(c.online(k), vec!["Alice", "bob"], "node {k}");
        }
        c.assert_same_everywhere();
    }
}

#[test]
fn an_admit_after_a_ban_in_the_log_is_let_in_everywhere_then_cut_off_by_its_node() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.host(
        0,
        HostCommand::Moderate(Moderation::Ban {
            name: "eve".into(),
            reason: Some("spam".into()),
        }),
    );
    // Node 1 has not applied the ban yet: its own check lets the name through.
    c.connect(1, 1);
    c.take(1, 1);
    c.line(1, 1, "Eve");
    c.line(1, 1, "typed meanwhile");
    c.settle();
    let got = c.take(1, 1);
    assert_eq!(
        got[1..],
        [
            "[*] You have been banned by Host (spam): the name Eve is refused here from now on.",
            "[!] You have been kicked out by Host. (spam)"
        ],
        "{got:#?}"
    );
    assert!(!c.nodes[1].open.contains(&1), "cut off");
    for k in 0..2 {
        assert_eq!(c.online(k), vec!["alice"], "node {k}");
    }
    assert_eq!(
        c.take(0, 1),
        vec!["[*] Eve entered.", "[*] Eve exited."],
        "what she typed was not said"
    );
    c.assert_same_everywhere_but(Some((1, 1)));
}

#[test]
fn the_log_alone_decides_who_is_in_whatever_a_node_s_own_bans() {
    use crate::accounts::model::{Ban, Change};
    let mut c = Cluster::new(2);
    // Node 0's accounts file bans eve; node 1's does not (each node its own data directory).
    let mut registry = Registry::default();
    registry.apply(&Change::PutBan(Ban {
        name: "eve".into(),
        by: "root".into(),
        at: 0,
        reason: None,
    }));
    c.nodes[0].chat.replace_registry(registry);
    c.join(0, 1, "alice");
    c.join(1, 1, "eve");
    c.line(1, 1, "hi from eve");
    c.settle();
    for k in 0..2 {
        assert_eq!(c.online(k), vec!["alice", "eve"], "node {k}");
    }
    assert_eq!(
        chat_lines(&c.take(0, 1)),
        vec!["[12:34:56] eve > hi from eve"]
    );
    c.assert_same_everywhere();
}

#[test]
fn a_console_kick_on_one_node_cuts_a_user_of_another() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.take(0, 1);
    c.host(
        1,
        HostCommand::Moderate(Moderation::Kick {
            name: "ALICE".into(),
            reason: Some("spam".into()),
        }),
    );
    c.settle();
    assert_eq!(
        c.take(0, 1),
        vec!["[!] You have been kicked out by Host. (spam)"]
    );
    assert!(!c.nodes[0].open.contains(&1), "node 0 closed alice");
    assert_eq!(c.take(1, 1), vec!["[*] alice has been kicked out. (spam)"]);
    for k in 0..2 {
        assert_eq!(c.online(k), vec!["bob"], "node {k}");
    }
    // Her connection's Left went through the log: the name is free everywhere.
    c.join(1, 2, "Alice");
    assert_eq!(c.online(0), vec!["Alice", "bob"]);
    c.assert_same_everywhere();
}

#[test]
fn a_left_takes_a_user_out_everywhere_and_frees_the_name() {
    let mut c = Cluster::new(3);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.join(2, 1, "carol");
    c.take(1, 1);
    c.take(2, 1);
    c.disconnect(0, 1);
    assert_eq!(c.online(0), vec!["alice", "bob", "carol"], "until the Left");
    c.settle();
    for k in 0..3 {
        assert_eq!(c.online(k), vec!["bob", "carol"], "node {k}");
    }
    assert_eq!(c.take(1, 1), vec!["[*] alice exited."]);
    assert_eq!(c.take(2, 1), vec!["[*] alice exited."]);
    // A node gone: the shell applies a Left for each of its ghosts.
    let ghost = c.nodes[1].ghosts[&(2, 1)];
    c.queue
        .push_back((1, Input::Applied(Shared::Left { conn: ghost }), true));
    c.run();
    assert_eq!(c.online(1), vec!["bob"]);
    assert_eq!(c.take(1, 1), vec!["[*] carol exited."]);
    c.join(1, 2, "ALICE");
}

#[test]
fn a_connection_gone_while_its_name_is_claimed_is_taken_out_after_its_admit() {
    let mut c = Cluster::new(2);
    c.join(1, 1, "bob");
    c.connect(0, 1);
    c.line(0, 1, "alice");
    c.disconnect(0, 1);
    c.settle();
    for k in 0..2 {
        assert_eq!(c.online(k), vec!["bob"], "node {k}");
    }
    c.join(1, 2, "alice");
    c.assert_same_everywhere();
}

#[test]
fn lines_typed_while_the_name_is_claimed_are_said_once_joined() {
    let mut c = Cluster::new(2);
    c.join(1, 1, "bob");
    c.take(1, 1);
    c.connect(0, 1);
    c.line(0, 1, "alice");
    c.line(0, 1, "early bird");
    c.settle();
    assert_eq!(
        c.take(1, 1),
        vec!["[*] alice entered.", "[12:34:56] alice > early bird"]
    );
}

#[test]
fn a_late_node_restored_from_snapshots_sees_who_is_online_topics_moderators_and_history() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.line(0, 1, "/join #dev");
    c.line(0, 1, "/topic builds and breaks");
    c.line(0, 1, "first dev line");
    c.line(1, 1, "/away lunch");
    c.line(1, 1, "in the lobby");
    // A room made and gone: ids are used up alike at every node.
    c.line(1, 1, "/join #tmp");
    c.line(1, 1, "/part #tmp");
    c.settle();
    c.line(0, 1, "second dev line");
    c.settle();
    // The late node (a run of its own, as the shell draws one at each start): a snapshot from
    // each live node, its users mapped to ghosts.
    let mut late = Node::new(&c.now);
    late.chat.config.epoch = 99;
    let k = c.nodes.len();
    for j in 0..k {
        let node = &c.nodes[j];
        let mut snapshot = node.chat.snapshot(|conn| !node.origin.contains_key(&conn));
        for user in &mut snapshot.users {
            user.conn = late.local(k, (j, user.conn.0));
        }
        let mut out = Outbox::new();
        late.chat.handle(&c.now, Input::Restore(snapshot), &mut out);
        let told: Vec<Action> = out
            .drain()
            .filter(|a| matches!(a, Action::Deliver { .. }))
            .collect();
        assert_eq!(told, vec![], "a restore is silent");
    }
    late.applied = c.log.len();
    c.nodes.push(late);
    let all = |node: &Node| node.chat.snapshot(|_| true).rooms;
    assert_eq!(all(&c.nodes[2]), all(&c.nodes[0]));
    assert_eq!(c.online(2), vec!["alice", "bob"]);
    c.connect(2, 1);
    c.line(2, 1, "zed");
    c.line(2, 1, "/users");
    c.line(2, 1, "/join #dev");
    c.settle();
    let got = c.take(2, 1);
    let expected = [
        "[*] Welcome, zed! Online: alice, bob. Type /help for the commands.",
        // History is shown in this node's offset from the line's Unix time.
        "[22:13:20] [history] bob > in the lobby",
        "[*] Online (3): alice, bob (away: lunch), zed",
        "[*] Topic of #dev: builds and breaks (set by alice on 2023-11-14 22:13:20)",
        "[22:13:20] #dev [history] alice > first dev line",
        "[22:13:20] #dev [history] alice > second dev line",
    ];
    for line in expected {
        assert!(got.iter().any(|l| l == line), "{line:?} not in {got:#?}");
    }
    // alice (node 0) moderates #dev at the late node too: she may take zed out of it.
    c.line(0, 1, "/remove zed");
    c.settle();
    let got = c.take(2, 1);
    assert!(
        got.iter()
            .any(|l| l.starts_with("[*] alice removed you from #dev")),
        "{got:#?}"
    );
    // From here on, every node computes the same from the log.
    for node in &mut c.nodes {
        node.replica.clear();
    }
    c.line(0, 1, "/join #new");
    c.line(2, 1, "/join #new");
    c.line(2, 1, "hello from the late node");
    c.settle();
    assert_eq!(
        c.take(0, 1).last().map(String::as_str),
        Some("[12:34:56] #new zed > hello from the late node")
    );
    c.assert_same_everywhere();
}

#[test]
fn degraded_the_users_are_told_and_their_lines_and_names_refused_until_whole_again() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.join(0, 3, "dora");
    c.take(0, 1);
    c.take(1, 1);
    c.degraded = true;
    c.feed(0, Input::Cluster(Health::Degraded));
    assert_eq!(
        c.take(0, 1),
        vec!["[!] The chat is degraded: the servers cannot reach each other, so what you send is refused until it is whole again."]
    );
    c.line(0, 1, "anyone there?");
    assert_eq!(
        c.take(0, 1),
        vec!["[!] the chat is degraded: not sent, as nothing can reach the other servers now; try again when it is whole"]
    );
    c.connect(0, 2);
    c.take(0, 2);
    c.line(0, 2, "carol");
    assert_eq!(
        c.take(0, 2),
        vec![
            "[!] the chat is degraded: not sent, as nothing can reach the other servers now; try again when it is whole",
            "Enter your name:"
        ]
    );
    c.host(
        0,
        HostCommand::Say {
            text: "kept".into(),
        },
    );
    // Leaving works without the log: the connection closes, its Left is kept.
    c.take(0, 3);
    c.line(0, 3, "/quit later");
    assert_eq!(c.take(0, 3), vec!["[*] Bye."]);
    assert!(!c.nodes[0].open.contains(&3));
    c.settle();
    assert_eq!(c.got(1, 1), Vec::<String>::new(), "nothing crossed");
    // Whole again: what was kept is sent, the users are told.
    c.degraded = false;
    let kept = std::mem::take(&mut c.kept);
    c.log.extend(kept);
    c.feed(0, Input::Cluster(Health::Restored));
    c.settle();
    assert_eq!(
        c.take(0, 1),
        vec![
            "[*] The chat is whole again.",
            "[12:34:56] Host > kept",
            "[*] dora exited."
        ]
    );
    assert_eq!(c.online(1), vec!["alice", "bob"]);
    c.line(0, 1, "anyone there?");
    c.settle();
    assert_eq!(
        c.take(1, 1),
        vec![
            "[12:34:56] Host > kept",
            "[*] dora exited.",
            "[12:34:56] alice > anyone there?"
        ]
    );
}

#[test]
fn the_same_log_gives_the_same_deliveries_to_the_same_users_at_every_node() {
    let mut c = Cluster::new(3);
    let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
    for (i, name) in names.iter().enumerate() {
        c.connect(i % 3, i as u64 + 1);
        c.line(i % 3, i as u64 + 1, name);
    }
    c.settle();
    let script = [
        (0, 1, "/join #dev"),
        (1, 2, "/join #dev"),
        (2, 3, "hello all"),
        (1, 2, "/topic the topic"),
        (0, 1, "/me waves"),
        (2, 6, "/join #DEV"),
        (2, 6, "/dm alice hi"),
        (1, 5, "/away brb"),
        (0, 4, "/users"),
        (1, 2, "/who"),
        (2, 3, "/dm erin are you there"),
        (1, 2, "/mod frank"),
        (2, 6, "/remove alice off topic"),
        (0, 1, "still in the lobby"),
        (1, 5, "/back"),
        (0, 4, "/quit bye"),
        (2, 3, "/whoami"),
        (1, 2, "/part #dev"),
        (2, 6, "/rooms"),
    ];
    for (k, id, line) in script {
        c.line(k, id, line);
        if id % 2 == 0 {
            c.settle();
        }
    }
    c.host(
        1,
        HostCommand::Moderate(Moderation::Kick {
            name: "carol".into(),
            reason: None,
        }),
    );
    c.host(
        2,
        HostCommand::Say {
            text: "the end".into(),
        },
    );
    c.settle();
    c.assert_same_everywhere();
    assert_eq!(c.online(0), vec!["alice", "bob", "erin", "frank"]);
    assert_eq!(
        c.got(0, 1)
            .iter()
            .filter(|l| l.contains("[dm] frank > hi"))
            .count(),
        1
    );
}

#[test]
fn without_cluster_mode_nothing_is_published() {
    let mut s = crate::core::testing::Script::new();
    s.join(1, "alice");
    let actions = s.line(1, "hi");
    assert!(!actions.iter().any(|a| matches!(a, Action::Publish(_))));
}

#[test]
fn entries_and_snapshots_cross_as_json_and_come_back_the_same() {
    let entries = [
        Shared::Admit {
            conn: ConnId(7),
            name: "alice".into(),
            role: Role::Admin,
            registered: true,
        },
        Shared::Said {
            conn: ConnId(7),
            msg: crate::proto::text::parse_line("/dm bob hi"),
        },
        Shared::Said {
            conn: ConnId(7),
            msg: crate::proto::text::parse_line("/join #dev"),
        },
        Shared::Left { conn: ConnId(7) },
        Shared::Host(HostCommand::Moderate(Moderation::Kick {
            name: "bob".into(),
            reason: None,
        })),
    ];
    for entry in entries {
        let json = serde_json::to_string(&entry).expect("an entry serializes");
        let back: Shared = serde_json::from_str(&json).expect("and deserializes");
        assert_eq!(back, entry);
    }
    let mut c = Cluster::new(1);
    c.join(0, 1, "alice");
    c.line(0, 1, "/join #dev");
    c.line(0, 1, "a line");
    c.settle();
    let snapshot = c.nodes[0].chat.snapshot(|_| true);
    let json = serde_json::to_string(&snapshot).expect("a snapshot serializes");
    assert_eq!(serde_json::from_str::<Snapshot>(&json).ok(), Some(snapshot));
}

#[test]
fn what_must_stay_on_its_node_is_never_published() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    let before = c.log.len();
    for line in ["/register hunter22", "/passwd old new", "/bm"] {
        c.line(0, 1, line);
    }
    c.host(0, HostCommand::ListUsers);
    assert_eq!(c.log.len(), before, "{:?}", &c.log[before..]);
    assert_eq!(
        c.take(0, CONSOLE),
        vec!["[*] alice entered.", "[*] Online (1): alice"]
    );
}

#[test]
fn a_registered_name_held_on_another_node_is_refused_as_taken_not_taken_over() {
    let mut c = Cluster::new(2);
    c.give_every_node_the_admin_root();
    for k in 0..2 {
        c.connect(k, 1);
        c.line(k, 1, "root");
        c.line(k, 1, "the password");
    }
    c.feed(
        0,
        Input::PasswordDone {
            conn: ConnId(1),
            outcome: crate::core::PasswordOutcome::Verified,
        },
    );
    c.settle();
    c.take(1, 1);
    c.feed(
        1,
        Input::PasswordDone {
            conn: ConnId(1),
            outcome: crate::core::PasswordOutcome::Verified,
        },
    );
    c.settle();
    assert_eq!(
        c.take(1, 1),
        vec![
            "[!] name taken: someone online already uses it",
            "Enter your name:"
        ]
    );
    assert!(c.nodes[0].open.contains(&1), "the holder stays");
    for k in 0..2 {
        assert_eq!(c.online(k), vec!["root"], "node {k}");
    }
}

#[test]
fn a_restore_of_a_persistent_room_made_elsewhere_keeps_it_here_too() {
    let c = Cluster::new(1);
    let mut late = Node::new(&c.now);
    let topic = TopicState {
        text: "ops only".into(),
        by: "root".into(),
        at: 1_700_000_000,
    };
    let ops = RoomState {
        id: 3,
        name: "#ops".into(),
        persistent: true,
        topic: Some(topic),
        moderators: vec![],
        last_seq: 0,
        history: vec![],
    };
    let snapshot = Snapshot {
        users: vec![],
        rooms: vec![ops],
        next_room: 5,
        epoch: 0,
    };
    let mut out = Outbox::new();
    late.chat
        .handle(&c.now, Input::Restore(snapshot.clone()), &mut out);
    let actions: Vec<Action> = out.drain().collect();
    let [Action::SaveRooms { rooms }] = &actions[..] else {
        panic!("{actions:?}");
    };
    let names: Vec<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["#lobby", "#ops"]);
    assert_eq!(late.chat.rooms.lookup("#OPS"), Some(RoomId(3)));
    assert_eq!(late.chat.rooms.next_id(), 5);
    // The same snapshot again changes nothing, and saves nothing.
    late.chat.handle(&c.now, Input::Restore(snapshot), &mut out);
    assert_eq!(out.drain().count(), 0);
}

#[test]
fn a_node_told_to_exit_publishes_a_left_for_each_of_its_users() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(0, 2, "carol");
    c.join(1, 1, "bob");
    c.take(1, 1);
    c.host(0, HostCommand::Exit);
    assert!(
        c.got(0, 1).iter().any(|l| l.contains("shutting down")),
        "{:?}",
        c.got(0, 1)
    );
    c.settle();
    assert_eq!(c.online(1), vec!["bob"]);
    assert_eq!(c.take(1, 1), vec!["[*] alice exited.", "[*] carol exited."]);
}

#[test]
fn three_admits_of_one_name_in_the_log_have_exactly_one_winner() {
    let mut c = Cluster::new(3);
    c.leases = None;
    for (k, name) in ["carol", "CAROL", "Carol"].iter().enumerate() {
        c.connect(k, 1);
        c.take(k, 1);
        c.line(k, 1, name);
    }
    c.settle();
    let welcomed: Vec<usize> = (0..3)
        .filter(|&k| c.got(k, 1).iter().any(|l| l.starts_with("[*] Welcome,")))
        .collect();
    assert_eq!(welcomed, vec![0], "the first in the log");
    for k in 0..3 {
        assert_eq!(c.online(k), vec!["carol"], "node {k}");
    }
    c.assert_same_everywhere();
}

/// A small xorshift generator: the same run every time.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }
}

/// After the log is applied everywhere: every node has the same users, each name once, and each
/// user is an open connection of exactly one node, under that name.
fn assert_one_chat(c: &Cluster) {
    let online = c.online(0);
    let mut keys: Vec<String> = online.iter().map(|n| n.to_lowercase()).collect();
    keys.dedup();
    assert_eq!(keys.len(), online.len(), "a name held twice: {online:?}");
    for (k, node) in c.nodes.iter().enumerate() {
        assert_eq!(c.online(k), online, "node {k}");
        let chatting: Vec<ConnId> = (node.chat.sessions.iter())
            .filter(|(_, s)| matches!(s.state, State::Chatting { .. }))
            .map(|(&conn, _)| conn)
            .collect();
        assert_eq!(chatting.len(), online.len(), "node {k}: {chatting:?}");
        for conn in chatting {
            let name = node.chat.sessions.name_of(conn).map(str::to_owned);
            let (home, id) = node.global(k, conn);
            let there = &c.nodes[home];
            assert!(there.open.contains(&id), "{name:?} has no connection");
            assert_eq!(
                there.chat.sessions.name_of(ConnId(id)).map(str::to_owned),
                name
            );
        }
    }
}

#[test]
fn random_runs_on_three_nodes_stay_one_chat_with_the_same_deliveries_everywhere() {
    let names = ["ann", "Ann", "bo", "BO", "cy", "dee", "eve", "fay"];
    let lines = [
        "hello",
        "/join #a",
        "/join #b",
        "/part",
        "/me nods",
        "/topic news",
        "/away busy",
        "/back",
        "/users",
        "/who",
        "/dm bo hi",
        "/dm ann yo",
        "/mod cy",
        "/remove dee",
        "/quit",
    ];
    for (run, leases) in [(1u64, true), (2, false), (3, true), (4, false)] {
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ run);
        let mut c = Cluster::new(3);
        if !leases {
            c.leases = None;
        }
        let mut next_id = [1u64; 3];
        for _ in 0..500 {
            let k = dice.roll(3);
            let open: Vec<u64> = c.nodes[k].open.iter().copied().collect();
            match dice.roll(10) {
                0 | 1 => {
                    let id = next_id[k];
                    next_id[k] += 1;
                    c.connect(k, id);
                    c.line(k, id, names[dice.roll(names.len())]);
                }
                2 if !open.is_empty() => c.disconnect(k, open[dice.roll(open.len())]),
                3 => c.host(
                    k,
                    HostCommand::Moderate(Moderation::Kick {
                        name: names[dice.roll(names.len())].into(),
                        reason: None,
                    }),
                ),
                4 => c.settle(),
                _ if !open.is_empty() => {
                    let id = open[dice.roll(open.len())];
                    c.line(k, id, lines[dice.roll(lines.len())]);
                }
                _ => {}
            }
        }
        c.settle();
        assert_one_chat(&c);
        c.assert_same_everywhere();
        // Not a run where nothing happened: many entries, many users in and out.
        let admits = (c.log.iter())
            .filter(|(_, e)| matches!(e, Shared::Admit { .. }))
            .count();
        let lefts = (c.log.iter())
            .filter(|(_, e)| matches!(e, Shared::Left { .. }))
            .count();
        let taken = (c.nodes.iter().flat_map(|n| n.got.values().flatten()))
            .filter(|l| l.starts_with("[!] name taken"))
            .count();
        eprintln!(
            "run {run}: {} entries, {admits} admits, {lefts} lefts, {taken} names refused",
            c.log.len()
        );
        assert!(
            c.log.len() > 150 && admits >= 20 && lefts >= 10,
            "run {run}"
        );
    }
}

#[test]
fn a_node_reading_other_accounts_still_judges_an_admin_s_commands_as_the_others_do() {
    let mut c = Cluster::new(2);
    c.give_every_node_the_admin_root();
    c.join(0, 1, "alice");
    c.connect(1, 1);
    c.line(1, 1, "root");
    c.line(1, 1, "the password");
    c.feed(
        1,
        Input::PasswordDone {
            conn: ConnId(1),
            outcome: crate::core::PasswordOutcome::Verified,
        },
    );
    c.settle();
    // Node 0 reads an accounts file without root (edited there alone, then SIGHUP).
    c.feed(0, Input::RegistryLoaded(Registry::default()));
    c.line(1, 1, "/kick alice");
    c.settle();
    for k in 0..2 {
        assert_eq!(c.online(k), vec!["root"], "node {k}");
    }
    assert!(!c.nodes[0].open.contains(&1), "alice was cut at her node");
    c.assert_same_everywhere();
}

#[test]
fn a_user_cut_off_for_unreadable_input_leaves_through_the_log_like_anyone() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(0, 2, "bob");
    c.join(1, 1, "carol");
    c.take(0, 2);
    let error = crate::proto::DecodeError::FrameTooLong {
        len: 1 << 20,
        max: 1 << 16,
    };
    c.feed(
        0,
        Input::BadInput {
            conn: ConnId(1),
            error,
        },
    );
    assert!(!c.nodes[0].open.contains(&1), "cut off");
    assert_eq!(
        c.got(0, 2),
        Vec::<String>::new(),
        "told with the others, not before"
    );
    c.settle();
    assert_eq!(c.take(0, 2), vec!["[*] alice exited."]);
    for k in 0..2 {
        assert_eq!(c.online(k), vec!["bob", "carol"], "node {k}");
    }
    c.assert_same_everywhere();
}

#[test]
fn a_crowded_room_s_joins_are_told_by_the_log_s_time_alike_at_every_node() {
    let config = ChatConfig {
        rooms: crate::core::rooms::RoomConfig {
            crowd: 2,
            ..Default::default()
        },
        ..ChatConfig::default()
    };
    let mut c = Cluster::with_config(2, config);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.join(0, 2, "carol");
    for node in &mut c.nodes {
        node.replica.clear();
    }
    c.take(0, 1);
    c.take(1, 1);
    // Two more join, a second apart, at different nodes.
    c.connect(0, 3);
    c.line(0, 3, "dave");
    c.settle();
    c.now.stamp = Stamp::new(1_700_000_001, 12, 34, 57);
    c.connect(1, 2);
    c.line(1, 2, "erin");
    c.settle();
    // Node 0's clock says the window is over long before node 1's does: no matter.
    let mut later = c.now;
    later.instant += std::time::Duration::from_secs(5);
    let mut out = Outbox::new();
    c.nodes[0].chat.handle(&later, Input::Tick, &mut out);
    assert_eq!(out.drain().count(), 0, "ticks tell no crowd in a cluster");
    assert!(c.nodes[0].chat.rooms.next_deadline().is_some(), "gathered");
    // Erin's Admit, a second on, told carol's and dave's; the next entry, two seconds on,
    // tells erin's.
    c.now.stamp = Stamp::new(1_700_000_003, 12, 34, 59);
    c.line(1, 1, "hello");
    c.settle();
    let told = |k: usize, id: u64| -> Vec<String> {
        c.got(k, id)
            .into_iter()
            .filter(|l| l.contains("entered"))
            .collect()
    };
    assert_eq!(
        told(0, 1),
        vec!["[*] carol and dave entered.", "[*] erin entered."],
        "each crowd told at the first entry a window after it"
    );
    assert_eq!(told(1, 1), told(0, 1));
    c.assert_same_everywhere();
}

#[test]
fn a_node_that_reads_it_is_gone_takes_its_own_users_out_where_the_log_says() {
    let mut c = Cluster::new(2);
    c.join(0, 1, "alice");
    c.join(1, 1, "bob");
    c.take(1, 1);
    // The log says node 0 is gone: every node applies a Left for each of node 0's users there,
    // node 0 itself too (for its own, still connected, users).
    c.log.push((0, Shared::Left { conn: ConnId(1) }));
    if let Some(leases) = &mut c.leases {
        leases.clear();
    }
    // Node 1 reads it and someone there takes the name, while node 0 lags behind.
    c.settle_at(&[1]);
    c.connect(1, 2);
    c.line(1, 2, "ALICE");
    c.settle();
    assert!(!c.nodes[0].open.contains(&1), "node 0 closed her");
    for k in 0..2 {
        assert_eq!(c.online(k), vec!["ALICE", "bob"], "node {k}");
    }
    assert_eq!(
        c.take(1, 1),
        vec!["[*] alice exited.", "[*] ALICE entered."]
    );
    c.assert_same_everywhere();
}
