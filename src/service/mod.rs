//! What running chatd as a service takes, beside the server itself: the settings file under the
//! flags ([`settings`]), a log file that logrotate can move and a log for the journal
//! ([`log`]), telling systemd when the server is ready and when it stops ([`notify`]), and
//! several nodes behind one port ([`nodes`]).

pub mod log;
pub mod nodes;
pub mod notify;
pub mod settings;
