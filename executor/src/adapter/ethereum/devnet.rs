//! The local single-host `devnet`: a post-merge chain of its own, for trying
//! an operator's setup without a public network. The execution client starts
//! from a fixed genesis (chain id 1337, every fork at block 0, one funded
//! account); the consensus client runs Lodestar's `dev` mode with 8 interop
//! validators on 2-second slots, built on that genesis block.
//!
//! Lodestar's dev mode makes a new beacon genesis at every start, so after a
//! stop the execution client keeps its blocks on disk but the chain goes on
//! from a fresh beacon genesis (the execution client reorgs onto it). A
//! devnet is for trying a setup, not for keeping a chain.

/// Written as `genesis.json` in the node's config directory.
pub const GENESIS_FILE: &str = "genesis.json";
pub const DEVNET_GENESIS: &str = include_str!("devnet-genesis.json");

/// The hash of the genesis block of [`DEVNET_GENESIS`], as the execution
/// client computes it (read from EthereumJS's `eth_getBlockByNumber(0)`;
/// the real-client test proves the two still agree: no block is produced
/// otherwise). Change one, change the other.
pub const DEVNET_GENESIS_HASH: &str = "0x763d61bafc139288ff9a4137209984baee17d5adf524845ca0f5bbfe734fb492";

/// Written as `devnet-params.yaml`: the beacon chain config of the devnet.
pub const PARAMS_FILE: &str = "devnet-params.yaml";
pub const DEVNET_PARAMS: &str = "\
ALTAIR_FORK_EPOCH: 0
BELLATRIX_FORK_EPOCH: 0
TERMINAL_TOTAL_DIFFICULTY: 0
DEPOSIT_CHAIN_ID: 1337
DEPOSIT_NETWORK_ID: 1337
SECONDS_PER_SLOT: 2
";

/// Interop validators the consensus client runs (indexes 0..7).
pub const VALIDATORS: u32 = 8;

/// Block rewards go to the genesis file's funded account.
pub const FEE_RECIPIENT: &str = "0x6a828992a1b8a96c21bad66f006f53df330a5cde";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_post_merge_with_the_funded_fee_recipient() {
        let g: serde_json::Value = serde_json::from_str(DEVNET_GENESIS).unwrap();
        assert_eq!(g["config"]["chainId"], 1337);
        assert_eq!(g["config"]["terminalTotalDifficulty"], 0);
        assert!(g["alloc"].get(FEE_RECIPIENT).is_some());
        assert!(DEVNET_PARAMS.contains("DEPOSIT_CHAIN_ID: 1337"));
    }
}
