//! A small SigV4-signing client of floe's own API, for floe's own tools (the CLI
//! talking to a running node). SKELETON: filled in by the Lambda API work.
