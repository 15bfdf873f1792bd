//! A cluster log value (one entry, or a batch) on any bytes: reading it must never panic, it
//! ends at the first entry that cannot be read, and every entry read encodes back to bytes that
//! read as the same entry.
#![no_main]

use chatd::cluster::entry::{entries, Entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut failed = false;
    for one in entries(data) {
        assert!(!failed, "an entry was read after one that could not be");
        match one {
            Ok(entry) => assert_eq!(Entry::decode(&entry.encode()).ok(), Some(entry)),
            Err(_) => failed = true,
        }
    }
});
