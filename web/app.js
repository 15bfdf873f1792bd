// The chatd page, for now the smallest that chats: join with a name (and a password), read the
// rooms' lines, send lines (slash commands work as in text mode). Every text from the server is
// put into the page as text (textContent), never as HTML.
"use strict";

const log = document.getElementById("log");
const joinForm = document.getElementById("join");
const sendForm = document.getElementById("send");
const status = document.getElementById("status");
let socket = null;
let password = "";

function show(text, kind) {
  const line = document.createElement("p");
  if (kind) line.className = kind;
  line.textContent = text;
  log.append(line);
  log.scrollTop = log.scrollHeight;
}

function said(at, from, text, action) {
  const line = document.createElement("p");
  const stamp = document.createElement("span");
  stamp.className = "stamp";
  stamp.textContent = at.hms + " ";
  line.append(stamp, document.createTextNode(action ? `* ${from} ${text}` : `<${from}> ${text}`));
  log.append(line);
  log.scrollTop = log.scrollHeight;
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function receive(msg) {
  switch (msg.type) {
    case "greeting": status.textContent = `${msg.online} online`; break;
    case "welcome":
      joinForm.hidden = true;
      sendForm.hidden = false;
      document.getElementById("message").focus();
      show(`Welcome, ${msg.name}.`, "notice");
      break;
    case "reply":
      if (msg.kind === "password_prompt") {
        send({ type: "say", text: password });
        password = "";
      } else if (msg.kind !== "name_prompt") {
        msg.lines.forEach((text) => show(text, "notice"));
      }
      break;
    case "chat": said(msg.at, msg.kind === "direct" ? `${msg.from} (DM)` : msg.from, msg.text); break;
    case "room_chat":
      said(msg.at, `${msg.from} ${msg.room.name}`, msg.text, msg.kind.endsWith("action"));
      break;
    case "error": show(msg.text, "error"); break;
    case "users": case "bans": msg.lines.forEach((text) => show(text, "notice")); break;
    case "bye": show("Goodbye.", "notice"); break;
    default:
      if (msg.kind || msg.name) show(`[${msg.type}] ${msg.kind || ""} ${msg.name || msg.room?.name || ""}`, "notice");
  }
}

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = document.getElementById("name").value.trim();
  password = document.getElementById("password").value;
  if (socket && socket.readyState === WebSocket.OPEN) {
    // The name was refused: the server waits for another on the same socket.
    send({ type: "hello", v: 1, name });
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/ws`);
  socket.addEventListener("open", () => send({ type: "hello", v: 1, name }));
  socket.addEventListener("message", (event) => {
    try {
      receive(JSON.parse(event.data));
    } catch (error) {
      show(`unreadable message: ${error}`, "error");
    }
  });
  socket.addEventListener("close", () => {
    status.textContent = "disconnected";
    joinForm.hidden = false;
    sendForm.hidden = true;
  });
});

sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const box = document.getElementById("message");
  if (box.value) send({ type: "line", text: box.value });
  box.value = "";
});
