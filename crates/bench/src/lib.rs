//! The side-by-side benchmark harness. Not built yet: see README's status table.
