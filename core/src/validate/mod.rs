//! Validation of objects, with errors naming the field.
