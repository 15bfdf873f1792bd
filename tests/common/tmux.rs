//! tmux for the tests that drive a program on a terminal: each [`Tmux`] is a tmux server of its
//! own (`tmux -L` with a unique socket name), killed when dropped; nothing else of tmux is
//! touched. Keys are typed with `send-keys` and the screen is read with `capture-pane`; every wait
//! polls the screen until the text expected is there, with a deadline, and fails showing the
//! screen.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::DataDir;

/// The longest any expected screen may take to appear.
pub const WAIT: Duration = Duration::from_secs(15);

/// A tmux server of our own, killed when dropped, and a directory for what the shells around
/// a program write when it exits.
pub struct Tmux {
    socket: String,
    files: DataDir,
}

impl Tmux {
    /// A tmux server on a fresh socket name; fails clearly when tmux is not installed.
    pub fn new() -> Tmux {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.as_ref().is_ok_and(|v| v.status.success()),
            "this test drives a program in tmux, and tmux is not installed \
             (apt-get install tmux; .ci/run installs it when it is missing): {version:?}"
        );
        Tmux {
            socket: format!(
                "chatd-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            files: DataDir::new(),
        }
    }

    /// Runs `tmux ARGS` on our socket, in UTF-8, with no configuration file.
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-u", "-f", "/dev/null", "-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// Runs `tmux ARGS`, which must succeed, and returns its output.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.tmux(args);
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts `chat ARGS` in a new `width` x `height` window named `name`, as [`Tmux::open_program`]
    /// does.
    pub fn open_chat(&self, name: &str, width: u16, height: u16, args: &[&str]) {
        self.open_program(name, width, height, env!("CARGO_BIN_EXE_chat"), args);
    }

    /// Starts `PROGRAM ARGS` in a new `width` x `height` window named `name` (a session of its
    /// own), under a shell that, once it ends, writes the terminal's settings (`stty -a`) and then
    /// its exit status to files. (The pane's screen is no witness of the end: tmux here can take
    /// seconds to read the last output of a pane whose processes have ended.) The shell outlives
    /// a Ctrl-C typed at the program: it traps SIGINT (a handler, which `exec` resets, so the
    /// program still gets the signal as usual).
    pub fn open_program(&self, name: &str, width: u16, height: u16, program: &str, args: &[&str]) {
        let file = self.files.path().join(name);
        let file = file.to_str().expect("a UTF-8 temp path");
        let script = format!(
            "trap : INT; \"$0\" \"$@\"; status=$?; stty -a > {file}.stty; \
             echo $status > {file}.part && mv {file}.part {file}.status"
        );
        let mut command = vec!["sh", "-c", &script, program];
        command.extend_from_slice(args);
        self.open(name, width, height, &command);
    }

    /// Where the cursor is in `name`'s pane: column and row, from 0.
    pub fn cursor(&self, name: &str) -> (usize, usize) {
        let out = self.ok(&[
            "display-message",
            "-p",
            "-t",
            name,
            "#{cursor_x} #{cursor_y}",
        ]);
        let mut parts = out
            .split_whitespace()
            .map(|n| n.parse().expect("a cursor position"));
        let x = parts.next().expect("cursor_x");
        let y = parts.next().expect("cursor_y");
        (x, y)
    }

    /// Starts `command` in a new `width` x `height` window named `name`; the pane stays after the
    /// command exits.
    pub fn open(&self, name: &str, width: u16, height: u16, command: &[&str]) {
        let (width, height) = (width.to_string(), height.to_string());
        let mut args = vec![
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width,
            "-y",
            &height,
            "--",
        ];
        args.extend_from_slice(command);
        self.ok(&args);
        // Keep the pane after the end, to read it if a test fails.
        self.ok(&["set-option", "-t", name, "remain-on-exit", "on"]);
    }

    /// Types `text` into `name`'s pane, as it is.
    pub fn type_text(&self, name: &str, text: &str) {
        self.ok(&["send-keys", "-t", name, "-l", text]);
    }

    /// Presses `keys` (tmux key names: Enter, Tab, C-c, PageUp, ...) in `name`'s pane.
    pub fn press(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.ok(&args);
    }

    /// Pastes `text` into `name`'s pane as a terminal does: the whole of it at once, each newline
    /// as a carriage return (tmux `load-buffer`, then `paste-buffer`, without bracketed paste).
    pub fn paste(&self, name: &str, text: &str) {
        let file = self.files.path().join(format!("{name}.paste"));
        std::fs::write(&file, text).expect("write the paste");
        let file = file.to_str().expect("a UTF-8 temp path");
        self.ok(&["load-buffer", "-b", name, file]);
        self.ok(&["paste-buffer", "-d", "-b", name, "-t", name]);
    }

    /// What `name`'s pane shows, row by row.
    pub fn screen(&self, name: &str) -> Vec<String> {
        self.ok(&["capture-pane", "-p", "-t", name])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Everything `name`'s pane has shown, the rows scrolled off the top included.
    pub fn history(&self, name: &str) -> Vec<String> {
        self.ok(&["capture-pane", "-p", "-S", "-", "-t", name])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Polls `name`'s pane until `done` holds for its screen; fails after [`WAIT`] with the screen.
    #[track_caller]
    pub fn wait_for(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen(name);
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no {what} within {WAIT:?}; the screen:\n{}",
                screen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until `name`'s pane shows `text` somewhere.
    #[track_caller]
    pub fn wait_text(&self, name: &str, text: &str) -> Vec<String> {
        self.wait_for(name, &format!("{text:?}"), |screen| {
            screen.iter().any(|row| row.contains(text))
        })
    }

    /// Waits for the program in `name`'s pane to exit; returns its exit status and the terminal's
    /// settings after it.
    #[track_caller]
    pub fn wait_exit(&self, name: &str) -> (i32, String) {
        let file = self.files.path().join(name);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(status) = std::fs::read_to_string(file.with_extension("status")) {
                let settings =
                    std::fs::read_to_string(file.with_extension("stty")).unwrap_or_default();
                let status = status.trim().parse().expect("an exit status");
                return (status, settings);
            }
            assert!(
                Instant::now() < deadline,
                "{name}: still running after {WAIT:?}; the screen:\n{}",
                self.screen(name).join("\n")
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Whether `stty -a` output shows a terminal in its usual cooked mode: lines, echo, signals.
pub fn cooked(settings: &str) -> bool {
    let flags: Vec<&str> = settings.split_whitespace().collect();
    ["icanon", "echo", "isig"]
        .iter()
        .all(|flag| flags.contains(flag))
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Killing the server hangs up the panes, and a chatd takes SIGHUP for "read the files
        // again": end what each pane runs (its process group, from the pane's PID) first.
        let panes = self.tmux(&["list-panes", "-a", "-F", "#{pane_pid}"]);
        for pid in String::from_utf8_lossy(&panes.stdout).split_whitespace() {
            if pid.parse::<u32>().is_ok() {
                let group = format!("-{pid}");
                let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            }
        }
        // tmux leaves its socket file behind when killed: remove ours too.
        let socket = self.tmux(&["display-message", "-p", "#{socket_path}"]);
        let _ = self.tmux(&["kill-server"]);
        let socket = String::from_utf8_lossy(&socket.stdout);
        if socket.trim().ends_with(&self.socket) {
            let _ = std::fs::remove_file(socket.trim());
        }
    }
}
