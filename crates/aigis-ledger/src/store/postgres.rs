//! PostgreSQL store (see the module docs of [`super`]).
