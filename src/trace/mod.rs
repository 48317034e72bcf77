//! Request traces: readers for the supported formats and synthetic generators.
