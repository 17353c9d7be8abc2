//! The subscriber side of every mode: many simulated subscribers per thread on one mio loop
//! ([`subscribe`]), spread over threads and worker processes ([`shards`]), each shard given a
//! [`plan`] and reporting an outcome that merges exactly; how one subscriber ends
//! ([`outcome`]).

pub mod outcome;
pub mod plan;
pub mod shards;
pub mod subscribe;
