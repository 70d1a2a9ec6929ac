//! Dependency vulnerability scanning: lockfiles and environments against an offline OSV index.
