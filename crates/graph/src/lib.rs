//! The investigation graph's engine: what the entities of a tenant's clusters are
//! ([`entity`]), how one audited API call becomes relationships counted in hourly buckets
//! ([`call`], [`bucket`]). No I/O: the server feeds it events and stores what it returns
//! through `osprey-store`; `osprey graph` does the same offline.

pub mod bucket;
pub mod call;
pub mod entity;

pub use bucket::{Buckets, EdgeKey, Hour, Relation};
pub use call::{ApiCall, CallLog, Counts, Outcome};
pub use entity::{EntityError, EntityId, EntityType};
