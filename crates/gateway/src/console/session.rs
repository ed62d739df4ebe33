//! A signed-in operator's session: what the sign-in stores, and what every page's frame shows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A signed-in operator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// The label of the console key used to sign in: what actions are recorded under.
    pub label: String,
    /// The token every form of this session carries.
    pub csrf: String,
    #[serde(with = "crate::domain::time::rfc3339")]
    pub expires_at: DateTime<Utc>,
}
