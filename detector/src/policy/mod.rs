//! Policy (placeholder, being written).
