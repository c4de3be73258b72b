//! The root package's integration tests, in one binary so that they link once: the `wgate` command run as a user
//! would (`cli`), the whole stack of real processes (`e2e`), and `wgate chaos` (`chaos`). Run one part with a
//! filter, e.g. `cargo test --test it e2e::`.

mod chaos;
mod cli;
mod e2e;
