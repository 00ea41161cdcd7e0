//! Osprey's data model: pure data shared by every engine, with serde on everything and no I/O.
//! Engines meet only through this crate (and `osprey-image`).

#![forbid(unsafe_code)]

/// An enum kept as text (in JSON, in the store, in query parameters): each variant with its one
/// spelling, `ALL`, `as_str`, `parse` (`None` for any other text), `Display` and serde. Used
/// for the finding model's enums here and the platform's in `osprey-store`, which must depend
/// on serde.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        // By hand: utoipa's derive does not see a `rename` whose text comes from a macro.
        #[cfg(feature = "openapi")]
        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                ::utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(::utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl ::utoipa::ToSchema for $name {}

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod export;
mod finding;
mod os;
mod package;

pub use finding::{
    Action, Container, Cvss, Evidence, Finding, FindingSource, FindingState, FixAvailable,
    ImageResource, KubernetesResource, KubernetesUser, MalwareScan, Mitre, Resource, ScannedVolume,
    Severity, SeverityLabel, Suppression, Threat, ThreatFile, VendorSeverity, Vulnerability,
    VulnerablePackage, Workflow, Workload, time_ms,
};
pub use os::Os;
pub use package::{Location, Package, PackageType};
