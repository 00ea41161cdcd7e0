//! The investigation graph's engine: what the entities of a tenant's clusters are
//! ([`entity`]), how one audited API call becomes relationships counted in hourly buckets
//! ([`call`], [`bucket`]) within a per-entity limit ([`budget`]), what a pod's properties are
//! ([`pod`]), what a finding names ([`named`]), how findings group ([`group`]), what an
//! entity's profile says ([`profile`]), how a round of events becomes rows to add
//! ([`record`]), what a cluster snapshot lists ([`snapshot`]), what a cluster's RBAC grants
//! ([`rbac`]) and what else an image, a subject or a pod affects ([`impact`]). No I/O: the
//! server feeds it events and stores what it returns through `osprey-store`; `osprey graph`
//! does the same offline.

pub mod bucket;
pub mod budget;
pub mod call;
pub mod entity;
pub mod group;
pub mod impact;
pub mod named;
pub mod pod;
pub mod profile;
pub mod rbac;
pub mod record;
pub mod snapshot;

pub use bucket::{Buckets, EdgeKey, Hour, OVERFLOW, Relation};
pub use budget::DEFAULT_MAX_EDGES_PER_HOUR;
pub use call::{ApiCall, CallLog, Counts, Outcome};
pub use entity::{EntityError, EntityId, EntityType};
pub use named::named_by;
pub use pod::PodProperties;
pub use record::{Delta, PodChange, Properties, RbacChange, Recorder, Sighting};
