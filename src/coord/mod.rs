//! The coordination runtime inside one training job: master, pservers, trainer.
pub mod applied;
pub mod book;
pub mod checkpoint;
pub mod client;
pub mod data;
pub mod error;
pub mod floats;
pub mod master;
pub mod model;
pub mod params;
pub mod proto;
pub mod pserver;
pub mod store;
pub mod trainer;
pub mod wal;
pub mod wal_scan;
