//! The peer protocol's wire format (see [`super::Message`]).
