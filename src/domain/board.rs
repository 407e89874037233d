//! board: domain types and validation.
