//! The persistent rooms on disk (the live rooms are [`crate::core::rooms`]'s): the pure model,
//! the rooms file under the data directory, and `chatd room`.
//!
//! - [`model`]: saved rooms, their changes and the file format; no I/O.
//! - [`store`]: locked, atomic read-modify-write of `DIR/rooms` (via [`crate::datadir`]).
//! - [`roomcmd`]: `chatd room ...`, the offline tool built on `store`.

pub mod model;
pub mod roomcmd;
pub mod store;

pub use store::RoomStore;
