//! Paged KV cache: block accounting only; it never decides who runs (that is the
//! scheduler's job).
