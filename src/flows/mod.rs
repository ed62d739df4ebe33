//! Use-cases shared by several callers: create a checkout, sync it with MSP, reconcile in the background.
