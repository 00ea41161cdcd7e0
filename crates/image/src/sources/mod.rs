//! Where images come from. One module per source kind; each turns its input into the parts
//! of an [`crate::Image`] and can open its layers.

pub(crate) mod archive;
pub(crate) mod dir;
pub(crate) mod docker_archive;
pub(crate) mod oci_layout;
pub mod registry;
