//! Novacula agent: the bare-metal executor.

pub mod adapter;
pub mod artifacts;
pub mod backend;
pub mod client;
pub mod config;
pub mod driver;
pub mod executor;
pub mod files;
pub mod probe;
pub mod systemd;
pub mod upgrade;

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("operating system RNG unavailable");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
