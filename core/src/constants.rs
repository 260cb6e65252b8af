//! Named bounds of zabflow-core. Every limit the crate enforces lives here, so that a
//! reader can see at a glance how big anything may grow.
