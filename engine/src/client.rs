//! HTTP client (placeholder while being written).
