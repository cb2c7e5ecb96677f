//! Compago adapter.
