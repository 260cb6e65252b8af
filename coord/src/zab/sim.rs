//! Deterministic simulation of a Zab ensemble (see the module docs of [`super`]).
