//! systemd's `Type=notify` protocol (sd_notify(3)), through the `sd-notify` crate: a datagram
//! to the socket named by `NOTIFY_SOCKET`. Without that variable nothing is sent.

use sd_notify::NotifyState;

/// Tells systemd the server accepts connections (`READY=1`), with `status` as its status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the server has begun to shut down (`STOPPING=1`).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        ::log::warn!("cannot notify systemd through NOTIFY_SOCKET: {e}");
    }
}
