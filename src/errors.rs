//! The merchant API error body and its one rendering path.
