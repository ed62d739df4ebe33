//! `checkout-gateway simulator`: a stateful MultiSafepay simulator (design §8).
