//! board over HTTP.
