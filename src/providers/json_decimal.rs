//! Exact JSON numbers as decimals.
