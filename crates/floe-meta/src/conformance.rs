//! Conformance suite of the metadata engine, run against every backend.
