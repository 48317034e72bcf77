//! Request traces: readers for the supported formats and synthetic generators.
//! TEMPORARY stand-in until the real readers land.
#![allow(missing_docs)]
use crate::units::SimTime;

#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub id: u64,
    pub arrival: SimTime,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub session_id: Option<u64>,
    pub prefix_hash_ids: Vec<u64>,
    pub hash_block_tokens: u32,
}
