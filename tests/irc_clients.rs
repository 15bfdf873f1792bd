//! Real IRC clients against the real `chatd`: Debian's irssi in tmux (typed at with `send-keys`,
//! read with `capture-pane`) and WeeChat headless (driven by its startup commands, read through
//! its log files) join, chat with an nc user both ways, and leave. `.ci/run` installs them when
//! they are missing. Each client gets a home directory of its own: nothing of the user's is read
//! or written.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{chat_line, DataDir, TestServer, TIMEOUT};

#[test]
fn irssi_joins_chats_with_an_nc_user_and_quits() {
    let server = TestServer::start(&["--server-name", "irc.test"]);
    let port = server.addr().port().to_string();
    let mut nc = server.join("nadia");
    let home = DataDir::new();
    let home_arg = format!("--home={}", home.arg());
    let tmux = Tmux::new();
    tmux.open(
        "irssi",
        100,
        30,
        &[
            "irssi",
            &home_arg,
            "-c",
            "127.0.0.1",
            "-p",
            &port,
            "-n",
            "irene",
        ],
    );
    nc.expect_line("irene entered.");
    // The server's JOIN made irssi open the channel's window (number 2), with its names.
    tmux.wait_text("irssi", "[Act: 2]");
    tmux.type_text("irssi", "/window 2");
    tmux.press("irssi", &["Enter"]);
    tmux.wait_text("irssi", "Total of 2 nicks");
    nc.send_line("hello irssi");
    tmux.wait_text("irssi", "< nadia> hello irssi");
    tmux.type_text("irssi", "hello nc");
    tmux.press("irssi", &["Enter"]);
    nc.expect_line(chat_line("irene", "hello nc"));
    tmux.type_text("irssi", "/me waves");
    tmux.press("irssi", &["Enter"]);
    nc.expect_line("irene waves");
    tmux.type_text("irssi", "/msg nadia just you");
    tmux.press("irssi", &["Enter"]);
    nc.expect_line("irene > just you");
    tmux.type_text("irssi", "/quit see you");
    tmux.press("irssi", &["Enter"]);
    nc.expect_line("irene exited. (see you)");
}

/// Polls `path` until it holds a line containing `text`; fails after `TIMEOUT` with what it holds.
#[track_caller]
fn wait_in_file(path: &std::path::Path, text: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let held = std::fs::read_to_string(path).unwrap_or_default();
        if held.lines().any(|l| l.contains(text)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} in {} within {TIMEOUT:?}; it holds:\n{held}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn weechat_joins_chats_with_an_nc_user_and_quits() {
    let server = TestServer::start(&["--server-name", "irc.test"]);
    let mut nc = server.join("nadia");
    let home = DataDir::new();
    let commands = format!(
        "/set logger.file.flush_delay 0;\
         /server add chatd 127.0.0.1/{} -notls -nicks=wendy -username=wendy -realname=Wendy;\
         /connect chatd",
        server.addr().port()
    );
    let mut weechat = Command::new("weechat-headless")
        .args(["--dir", home.arg(), "--run-command", &commands])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weechat-headless starts (apt-get install weechat-headless)");
    nc.expect_line("wendy entered.");
    nc.send_line("hello weechat");
    let log = home.path().join("logs").join("irc.chatd.#lobby.weechatlog");
    wait_in_file(&log, "nadia\thello weechat");
    // Its FIFO pipe takes commands while it runs.
    let fifo = std::fs::read_dir(home.path())
        .expect("weechat's directory")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("weechat_fifo"))
        })
        .expect("weechat's FIFO");
    std::fs::write(&fifo, "irc.chatd.#lobby *hello nc\n").expect("write to weechat's FIFO");
    nc.expect_line(chat_line("wendy", "hello nc"));
    std::fs::write(&fifo, "irc.server.chatd */quit done\n").expect("write to weechat's FIFO");
    nc.expect_line("wendy exited. (done)");
    let _ = weechat.kill();
    let _ = weechat.wait();
}
