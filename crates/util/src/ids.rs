//! Catalog row identifiers. They are opaque numbers issued by the catalog; the
//! newtypes stop a patient id from being passed where an institution id is meant.

use std::fmt;

macro_rules! row_id {
    ($name:ident, $what:literal) => {
        #[doc = concat!("Catalog identifier of ", $what, ".")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

row_id!(InstitutionId, "an institution (a tenant of the region)");
row_id!(PatientRef, "a master patient record");
