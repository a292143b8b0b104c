//! Defaulting: the values the apiserver fills in before validation.
