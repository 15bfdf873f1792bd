// The chatd page: join with a name (and a password), then chat in rooms and in direct messages
// over a WebSocket to /ws, in the JSON messages of PROTOCOL.md ("WebSocket mode"). Every text
// from the server goes into the page as text (textContent), never as HTML; there is no inline
// script or style and no eval, so the server's strict Content-Security-Policy holds.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  join: $("join"), name: $("name"), password: $("password"), joinError: $("join-error"),
  app: $("app"), rooms: $("rooms"), dms: $("dms"), users: $("users"), views: $("views"),
  title: $("view-title"), topic: $("topic"), send: $("send"), message: $("message"),
  status: $("status"), notify: $("notify"),
};

// The version of the JSON vocabulary this page speaks (PROTOCOL.md, "WebSocket mode").
const VERSION = 3;
// Views are keyed: the default room by "" (its name comes with the first `who`), other rooms by
// their name in lower case, direct messages by "@" and the other's name in lower case.
const DEFAULT = "";
const PAGE_HELP = [
  "On this page: Enter sends; click a room to switch to it, click a name for a direct message;",
  "Alt+Up and Alt+Down go through the rooms; lines typed while offline go once reconnected.",
];
const chat = {
  socket: null,
  name: "", password: "", // what the form said, kept for reconnecting
  me: "", // the name the server welcomed
  online: false, // welcomed on the open socket
  reconnect: false, // whether a lost connection is tried again
  lost: false, // a connection was lost and is not back yet
  delay: 500, // the next reconnect's wait, doubling to 10 s
  defaultName: null,
  rooms: new Map(), // the rooms joined besides the default one: key -> name
  current: DEFAULT, // the server's current room, where plain lines go
  views: new Map(),
  shown: DEFAULT,
  queue: [], // lines typed while offline: {key, text, echo}
  quiet: { users: 0, who: 0, switched: 0 }, // answers to the page's own requests, not shown
  rejoining: new Set(),
  users: [],
};

function span(className, text) {
  const node = document.createElement("span");
  node.className = className;
  node.textContent = text;
  return node;
}

// Times come as Unix seconds and are shown in the reader's own time, HH:MM:SS.
function now() {
  return Math.floor(Date.now() / 1000);
}

function hms(at) {
  return new Date(at * 1000).toTimeString().slice(0, 8);
}

// A stable colour class (c0 to c7) for a name, whatever its case.
function colour(name) {
  let hash = 0;
  for (const c of name.toLowerCase()) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `c${hash % 8}`;
}

function roomKey(name) {
  const lower = name.toLowerCase();
  return chat.defaultName && lower === chat.defaultName.toLowerCase() ? DEFAULT : lower;
}

function view(key, title) {
  let v = chat.views.get(key);
  if (v) return v;
  const log = document.createElement("div");
  log.className = "log";
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", title);
  log.hidden = true;
  ui.views.append(log);
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.view = key;
  const label = span("label", title);
  const badge = span("badge", "");
  button.append(label, badge);
  button.addEventListener("click", () => open(key));
  item.append(button);
  (key.startsWith("@") ? ui.dms : ui.rooms).append(item);
  // last: the id of the last room line received (sent in a resume after a reconnect); mine: the
  // texts of the lines this page said there, which the server does not echo and so gives no id.
  v = { key, title, log, item, button, label, badge, unread: 0, last: null, mine: [], topic: "", mods: new Set() };
  chat.views.set(key, v);
  return v;
}

const roomView = (name) => view(roomKey(name), name);
const dmView = (name) => Object.assign(view(`@${name.toLowerCase()}`, `@${name}`), { peer: name });

function drop(key) {
  const v = chat.views.get(key);
  if (!v || key === DEFAULT) return;
  v.log.remove();
  v.item.remove();
  chat.views.delete(key);
}

// Shows a view (the server's current room is moved along when the user clicks a room).
function show(key) {
  const v = chat.views.get(key) || view(DEFAULT, chat.defaultName || "lobby");
  chat.shown = v.key;
  for (const other of chat.views.values()) {
    other.log.hidden = other !== v;
    other.button.setAttribute("aria-current", other === v ? "true" : "false");
  }
  ui.title.textContent = v.key.startsWith("@") ? `Direct messages with ${v.peer}` : v.title;
  ui.topic.textContent = v.topic;
  v.unread = 0;
  badges();
  renderUsers();
  v.log.scrollTop = v.log.scrollHeight;
}

function open(key) {
  show(key);
  if (!key.startsWith("@") && chat.online) {
    toRoom(key);
    refreshWho();
  }
  ui.message.focus();
}

function toRoom(key) {
  if (key === chat.current) return;
  chat.quiet.switched++;
  put({ type: "command", name: "room", args: chat.views.get(key).title });
  chat.current = key;
}

function badges() {
  let total = 0;
  for (const v of chat.views.values()) {
    v.badge.textContent = v.unread ? String(v.unread) : "";
    v.button.setAttribute("aria-label", v.unread ? `${v.title}, ${v.unread} unread` : v.title);
    total += v.unread;
  }
  document.title = total ? `(${total}) chatd` : "chatd";
}

function append(v, node, counts) {
  const log = v.log;
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(node);
  while (log.childElementCount > 2000) log.firstElementChild.remove();
  if (atEnd) log.scrollTop = log.scrollHeight;
  if (counts && (v.key !== chat.shown || document.hidden)) {
    v.unread++;
    badges();
  }
}

function notice(text, className = "notice", key = chat.shown) {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text.replace(/^\[[*!]\] /, "");
  append(chat.views.get(key) || view(DEFAULT, "lobby"), p, false);
  return p;
}

function mentions(text) {
  const name = chat.me.replace(/[.-]/g, "\\$&");
  return new RegExp(`(^|[^\\w.-])${name}($|[^\\w.-])`, "i").test(text);
}

// A chat line. After a reconnect the server sends exactly the lines after the last id the page
// had, so nothing is shown twice, except the page's own lines: they came back with ids it never
// had, and are skipped here (it showed them when they were typed).
function said(v, at, from, text, { action = false, history = false, own = false } = {}) {
  if (history && from === chat.me) {
    const i = v.mine.indexOf(text);
    if (i >= 0) return void v.mine.splice(i, 1);
  }
  if (own) {
    v.mine.push(text);
    if (v.mine.length > 200) v.mine.shift(); // the server keeps 200 lines a room at most
  }
  const p = document.createElement("p");
  p.className = history ? "said history" : "said";
  p.append(span("stamp", hms(at)), " ", span(`from ${colour(from)}`, action ? `* ${from}` : from), " ", span("text", text));
  const theirs = !history && from !== chat.me;
  append(v, p, theirs);
  if (theirs && (v.key.startsWith("@") || mentions(text))) notify(from, text, v);
  return p;
}

function notify(from, text, v) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  const title = v.key.startsWith("@") ? `${from} (direct message)` : `${from} in ${v.title}`;
  const note = new Notification(title, { body: text, tag: v.key });
  note.addEventListener("click", () => {
    window.focus();
    show(v.key);
  });
}

function renderUsers() {
  const mods = chat.views.get(chat.shown)?.mods || new Set();
  ui.users.replaceChildren(...chat.users.map((user) => {
    const item = document.createElement("li");
    const marks = user.name === chat.me ? ["you"] : [];
    if (user.role === "admin") marks.push("admin");
    if (mods.has(user.name.toLowerCase())) marks.push("moderator");
    if (user.away !== null) marks.push(user.away ? `away: ${user.away}` : "away");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.name = user.name;
    button.disabled = user.name === chat.me;
    button.append(span(`from ${colour(user.name)}`, user.name));
    if (marks.length) button.append(" ", span("marks", `(${marks.join(", ")})`));
    if (!button.disabled) button.title = `Send ${user.name} a direct message`;
    button.addEventListener("click", () => open(dmView(user.name).key));
    item.append(button);
    return item;
  }));
}

function put(message) {
  if (chat.socket && chat.socket.readyState === WebSocket.OPEN) chat.socket.send(JSON.stringify(message));
}

function quietly(what, args = "") {
  chat.quiet[what]++;
  put({ type: "command", name: what, args });
}

function refreshWho() {
  const key = chat.shown.startsWith("@") ? chat.current : chat.shown;
  quietly("who", key === DEFAULT ? chat.defaultName || "" : chat.views.get(key).title);
}

function status(text) {
  ui.status.textContent = text;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws`);
  chat.socket = socket;
  socket.addEventListener("open", () => {
    // The last line of each room the page has: the server sends only what came after (or says
    // what it could not recover), instead of the usual history.
    const after = {};
    for (const v of chat.views.values()) {
      if (!v.peer && v.last) after[v.key === DEFAULT ? chat.defaultName || "" : v.title] = v.last;
    }
    if (Object.keys(after).length) put({ type: "resume", after });
    put({ type: "hello", v: VERSION, name: chat.name });
  });
  socket.addEventListener("message", (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return notice("an unreadable message came from the server", "error");
    }
    receive(Array.isArray(msg) ? liveLine(msg) : msg);
  });
  socket.addEventListener("close", () => closed(socket));
}

// A line said now comes as an array of its fields (PROTOCOL.md, "Live lines"): the object it
// stands for.
function liveLine(fields) {
  if (fields[0] === "room_chat") {
    const [type, name, isDefault, id, at, from, text] = fields;
    return { type, room: { name, default: isDefault }, id, at, from, text };
  }
  const [type, id, at, from, text] = fields;
  return { type, id, at, from, text };
}

function closed(socket) {
  if (socket !== chat.socket) return;
  const was = chat.online;
  chat.socket = null;
  chat.online = false;
  if (!chat.reconnect) {
    status("Not connected");
    ui.join.hidden = false;
    if (!was && !chat.me) ui.joinError.textContent ||= "Could not reach the server.";
    return;
  }
  if (was) {
    chat.lost = true;
    notice("Connection lost: reconnecting. Lines you type now are sent once it is back.", "error");
  }
  status(`Offline: reconnecting in ${chat.delay / 1000} s`);
  setTimeout(connect, chat.delay);
  chat.delay = Math.min(chat.delay * 2, 10000);
}

function welcomed(msg) {
  chat.me = msg.name;
  chat.online = true;
  chat.reconnect = true;
  chat.delay = 500;
  const wanted = chat.current; // the current room before the connection was lost
  chat.current = DEFAULT;
  ui.join.hidden = true;
  ui.app.hidden = false;
  status(`Connected as ${msg.name}`);
  // The first welcome shows the lobby; a reconnect keeps the view shown. (A view made by a
  // notice before the welcome, as when a password check is held, is not shown yet.)
  const shown = chat.views.get(chat.shown);
  if (!shown || shown.log.hidden) show(shown ? chat.shown : DEFAULT);
  if (chat.lost) {
    notice("Connection restored.", "notice restored");
    chat.lost = false;
  } else {
    const others = msg.others.join(", ") + (msg.more ? ` and ${msg.more} more` : "");
    notice(`Welcome, ${msg.name}! Online: ${others || "nobody else"}. Type /help for the commands.`);
    ui.message.focus();
  }
  quietly("who", chat.defaultName || "");
  quietly("users");
  // Back into the rooms it was in, then to the room that was current, then what was typed.
  for (const [key, name] of chat.rooms) {
    chat.rejoining.add(key);
    put({ type: "command", name: "join", args: name });
    chat.current = key;
  }
  if (wanted === DEFAULT || chat.rooms.has(wanted)) toRoom(wanted);
  for (const item of chat.queue.splice(0)) deliver(item);
}

// Lines go as the protocol's `line` message (so /commands work as in text mode); plain text
// typed in a direct-message view goes as a `dm`. The server echoes nothing: the page shows
// what was said itself.
function deliver({ key, text, echo }) {
  echo?.classList.remove("pending");
  const trimmed = text.trimStart();
  const command = trimmed.startsWith("/") && !trimmed.startsWith("//");
  const v = chat.views.get(key);
  if (v?.peer && !command) {
    put({ type: "dm", to: v.peer, text: trimmed.startsWith("//") ? trimmed.slice(1) : text });
    return;
  }
  if (v && !v.peer && !command) toRoom(key);
  if (/^\/(quit|exit|disconnect)\b/i.test(trimmed)) chat.reconnect = false;
  put({ type: "line", text });
}

ui.send.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.message.value;
  if (!text.trim()) return;
  ui.message.value = "";
  const trimmed = text.trimStart();
  const command = trimmed.startsWith("/") && !trimmed.startsWith("//");
  const dm = /^\/(dm|msg|messageto)\s+(\S+)\s+(.*\S)/i.exec(trimmed); // shown in its conversation
  const v = dm ? dmView(dm[2]) : chat.views.get(chat.shown);
  const shown = command ? dm?.[3] : trimmed.startsWith("//") ? trimmed.slice(1) : text;
  const own = !dm && !v?.peer; // a room line, which comes back on a resume
  const echo = shown === undefined ? null : said(v, now(), chat.me, shown, { own });
  const item = { key: chat.shown, text, echo };
  if (chat.online) return deliver(item);
  echo?.classList.add("pending");
  if (command) notice(`${text} (is sent once the connection is back)`, "notice pending");
  chat.queue.push(item);
});

function roomEvent(msg) {
  const v = roomView(msg.room.name);
  const names = msg.names.join(", ") + (msg.more ? ` and ${msg.more} others` : "");
  const why = msg.text ? ` (${msg.text})` : "";
  const texts = {
    entered: `${names} entered.`,
    parted: `${names} left.${why}`,
    exited: `${names} exited.${why}`,
    kicked: `${names} was kicked out.${why}`,
    removed: `${names} was removed by ${msg.by}.${why}`,
    topic: `${msg.by} set the topic: ${msg.text}`,
    moderator: `${msg.by} made ${names} a moderator.`,
  };
  if (msg.kind === "topic") {
    v.topic = msg.text;
    if (chat.shown === v.key) ui.topic.textContent = v.topic;
  }
  notice(texts[msg.kind] || `${msg.kind}: ${names}`, "notice", v.key);
  if (msg.kind !== "topic" && (v.key === chat.shown || v.key === chat.current)) refreshWho();
}

function currentRoom(msg) {
  if (msg.room.default) chat.defaultName = msg.room.name;
  const key = roomKey(msg.room.name);
  const showIt = !chat.views.get(chat.shown)?.peer;
  chat.current = roomKey(msg.current);
  if (msg.kind === "joined") {
    chat.rooms.set(key, msg.room.name);
    const v = roomView(msg.room.name);
    if (chat.rejoining.delete(key)) return;
    notice(msg.created ? `You made ${v.title} and moderate it.` : `You joined ${v.title} (${msg.members} members).`, "notice", key);
    if (showIt) show(key);
    refreshWho();
  } else if (msg.kind === "switched") {
    if (chat.quiet.switched > 0) return void chat.quiet.switched--;
    if (showIt) show(chat.current);
    refreshWho();
  } else {
    chat.rooms.delete(key);
    const by = msg.kind === "removed" ? ` (removed by ${msg.by}${msg.reason ? `: ${msg.reason}` : ""})` : "";
    const wasShown = chat.shown === key;
    drop(key);
    if (wasShown) show(chat.current);
    notice(`You left ${msg.room.name}${by}.`, "notice", chat.current);
  }
}

function receive(msg) {
  switch (msg.type) {
    case "greeting": status(`${msg.online} online`); break;
    case "welcome": welcomed(msg); break;
    case "reply":
      if (msg.kind === "password_prompt") put({ type: "say", text: chat.password });
      else if (msg.kind !== "name_prompt") msg.lines.forEach((text) => notice(text));
      if (msg.kind === "help") PAGE_HELP.forEach((text) => notice(text));
      break;
    case "error":
      if (chat.online) return void notice(msg.text, "error");
      // A refused name or password: the server waits for another hello on this socket.
      chat.reconnect = false;
      ui.joinError.textContent = msg.text;
      ui.join.hidden = false;
      status("Not joined");
      break;
    case "chat": {
      const v = msg.kind === "direct" ? dmView(msg.from) : view(DEFAULT, chat.defaultName || "lobby");
      if (msg.id) v.last = msg.id;
      said(v, msg.at, msg.from, msg.text, { history: msg.kind === "history" });
      break;
    }
    case "room_chat": {
      const v = roomView(msg.room.name);
      if (msg.id) v.last = msg.id;
      said(v, msg.at, msg.from, msg.text, {
        action: !!msg.kind?.endsWith("action"), history: !!msg.kind?.startsWith("history"),
      });
      break;
    }
    case "gap":
      if (msg.room.default) chat.defaultName = msg.room.name;
      notice(msg.text, "notice gap", roomKey(msg.room.name));
      break;
    case "room_event": roomEvent(msg); break;
    case "current_room": currentRoom(msg); break;
    case "event": {
      const why = msg.reason ? ` (${msg.reason})` : "";
      const texts = {
        entered: `${msg.name} entered.`, exited: `${msg.name} exited.${why}`,
        kicked: `${msg.name} has been kicked out.${why}`, shutdown: "The server is shutting down.",
      };
      notice(texts[msg.kind] || `${msg.kind} ${msg.name}`, "notice", DEFAULT);
      if (msg.kind !== "shutdown") quietly("users");
      break;
    }
    case "kicked":
      chat.reconnect = false;
      notice(`You have been kicked out by ${msg.by}.${msg.reason ? ` (${msg.reason})` : ""}`, "error");
      break;
    case "presence": {
      // Someone went away or came back: their mark changes in place, with no line in the log.
      const user = chat.users.find((u) => u.name.toLowerCase() === msg.name.toLowerCase());
      if (user) {
        user.away = msg.away;
        renderUsers();
      }
      break;
    }
    case "users":
      chat.users = msg.users;
      renderUsers();
      if (chat.quiet.users > 0) chat.quiet.users--;
      else msg.lines.forEach((text) => notice(text));
      break;
    case "who": {
      if (chat.defaultName === null) {
        chat.defaultName = msg.room;
        const v = view(DEFAULT, msg.room);
        v.title = msg.room;
        v.label.textContent = msg.room;
        v.log.setAttribute("aria-label", msg.room);
        badges();
        if (chat.shown === DEFAULT) ui.title.textContent = msg.room;
      }
      // Only a room the page is in has a view: the answer for a room just left (asked for
      // before the part was through) or for a /who of another room must not bring one back.
      const v = chat.views.get(roomKey(msg.room));
      if (v) v.mods = new Set(msg.members.filter((m) => m.moderator).map((m) => m.name.toLowerCase()));
      renderUsers();
      if (chat.quiet.who > 0) chat.quiet.who--;
      else notice(`In ${msg.room}: ${msg.members.map((m) => m.name + (m.moderator ? " (moderator)" : "")).join(", ")}`);
      break;
    }
    case "rooms":
      notice(`Rooms (${msg.rooms.length}):`);
      msg.rooms.forEach((r) => notice(`  ${r.name} (${r.members})${r.topic ? `: ${r.topic}` : ""}`));
      break;
    case "topic": {
      const v = roomView(msg.room);
      v.topic = msg.topic ? msg.topic.text : "";
      if (chat.shown === v.key) ui.topic.textContent = v.topic;
      notice(msg.topic ? `Topic of ${msg.room}: ${msg.topic.text} (set by ${msg.topic.by})` : `${msg.room} has no topic.`, "notice", v.key);
      break;
    }
    case "bans": msg.lines.forEach((text) => notice(text)); break;
    case "pong": notice(`pong, server time ${hms(msg.at)}`); break;
    case "bye":
      chat.reconnect = false;
      notice("You left the chat: join again above.");
      break;
  }
}

ui.join.addEventListener("submit", (event) => {
  event.preventDefault();
  chat.name = ui.name.value.trim();
  chat.password = ui.password.value;
  ui.joinError.textContent = "";
  if (chat.socket && chat.socket.readyState === WebSocket.OPEN) put({ type: "hello", v: VERSION, name: chat.name });
  else connect();
});

// Notifications are asked for on a click, never on load.
function offerNotifications() {
  ui.notify.hidden = !("Notification" in window) || Notification.permission !== "default";
}
ui.notify.addEventListener("click", () => Notification.requestPermission().then(offerNotifications));
offerNotifications();

document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  const v = chat.views.get(chat.shown);
  if (v) v.unread = 0;
  badges();
});

// Alt+Up and Alt+Down: the view above or below in the lists.
document.addEventListener("keydown", (event) => {
  if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
  const keys = [...document.querySelectorAll("#side button")].map((b) => b.dataset.view);
  const at = keys.indexOf(chat.shown);
  const next = keys[(at + (event.key === "ArrowUp" ? keys.length - 1 : 1)) % keys.length];
  if (next !== undefined) {
    event.preventDefault();
    open(next);
  }
});

setInterval(() => {
  if (!chat.online) return;
  quietly("users");
  refreshWho();
}, 20000);
