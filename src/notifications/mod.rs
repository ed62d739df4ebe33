//! MultiSafepay notifications (`/notifications/multisafepay`, POST signed or GET), design §5.
