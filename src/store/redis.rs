//! The Redis store: multiplexed connection manager or cluster client, Lua for atomic steps.
