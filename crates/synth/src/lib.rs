//! Synthetic studies (placeholder).
