//! Secret recognisers (to be written).
