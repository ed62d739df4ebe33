//! The payment service provider edge: the MultiSafepay client and the conversion of its answers.
